#include "feedback_log.h"

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "sql_connection.h"

namespace kiln::learn {
namespace {

namespace fs = std::filesystem;

/// Version of the log's schema (kiln_feedback_meta.schema_version). Bump only with a migration.
/// 1: text items; 2: adds image (the item's image file, relative to the log's folder) and has_text.
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS kiln_feedback_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kiln_feedback (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  item_id TEXT UNIQUE,
  text TEXT NOT NULL,
  label TEXT NOT NULL,
  received_at REAL NOT NULL);
INSERT OR IGNORE INTO kiln_feedback_meta (key, value) VALUES ('schema_version', '1');
)";

constexpr const char* kMigrateTo2 = R"(
ALTER TABLE kiln_feedback ADD COLUMN image TEXT;
ALTER TABLE kiln_feedback ADD COLUMN has_text INTEGER NOT NULL DEFAULT 1;
UPDATE kiln_feedback_meta SET value = '2' WHERE key = 'schema_version';
)";

/// The image file's extension from its first bytes (the decoder reads either by content).
std::string image_extension(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8
             ? ".jpg"
             : ".png";
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

FeedbackLog::FeedbackLog(const std::string& path) : path_(path) {
  tune::StorageOptions so;
  so.busy_timeout_seconds = 30;
  db_ = tune::open_sqlite_connection(path, path, so);
  // Durable at COMMIT, not only across a crash of this process (WAL with synchronous=NORMAL is).
  db_->execute_script("PRAGMA synchronous = FULL;");
  db_->begin(tune::SqlConnection::Access::kWrite);
  try {
    db_->execute_script(kSchema);
    auto rows = db_->query("SELECT value FROM kiln_feedback_meta WHERE key = 'schema_version'");
    int version = rows.empty() ? 0 : std::stoi(rows.text(0, 0));
    if (version == 1) {
      db_->execute_script(kMigrateTo2);
      version = 2;
    }
    if (version != kSchemaVersion) {
      throw DataError(path + ": a feedback log of schema version " + std::to_string(version) + ", this Kiln reads " +
                      std::to_string(kSchemaVersion) + "; use a new --state-dir or the Kiln that wrote it");
    }
    db_->commit();
  } catch (...) {
    db_->rollback();
    throw;
  }
}

FeedbackLog::~FeedbackLog() = default;

AppendResult FeedbackLog::append(const std::vector<FeedbackItem>& items) {
  AppendResult r;
  std::lock_guard<std::mutex> lock(mu_);
  db_->begin(tune::SqlConnection::Access::kWrite);
  try {
    const double now = unix_now();
    std::set<std::string> ids;
    std::size_t k = 0;
    for (const auto& item : items) {
      if (++k % 16 == 0) std::this_thread::yield();  // the server's waiting predictions run between pieces
      if (!item.id.empty()) {
        if (!ids.insert(item.id).second ||
            !db_->query("SELECT 1 FROM kiln_feedback WHERE item_id = $1", {item.id}).empty()) {
          ++r.duplicates;
          continue;
        }
      }
      tune::SqlValue id;
      if (!item.id.empty()) id = item.id;
      const auto inserted =
          db_->query("INSERT INTO kiln_feedback (item_id, text, label, received_at, has_text) VALUES ($1, $2, $3, $4, $5) "
                     "RETURNING seq",
                     {id, item.example.text.value_or(""), item.example.label, now, int64_t{item.example.text ? 1 : 0}});
      if (item.example.image) {
        if (item.example.image->bytes.empty()) {
          throw DataError(path_ + ": a feedback item's image must be given as its file's bytes");
        }
        // A crash before COMMIT leaves the file without its row; the seq is handed out again and
        // the next item's file replaces it.
        const std::string rel = "images/" + std::to_string(inserted.i64(0, 0)) + image_extension(item.example.image->bytes);
        fs::create_directories(fs::absolute(path_).parent_path() / "images");
        core::write_file_atomic(fs::absolute(path_).parent_path() / rel, item.example.image->bytes);
        db_->query("UPDATE kiln_feedback SET image = $1 WHERE seq = $2", {rel, inserted.i64(0, 0)});
      }
      ++r.accepted;
    }
    db_->commit();
  } catch (...) {
    db_->rollback();
    throw;
  }
  return r;
}

std::vector<FeedbackItem> FeedbackLog::read_after(int64_t after, int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  db_->begin(tune::SqlConnection::Access::kRead);
  tune::SqlRows rows;
  try {
    rows = db_->query(
        "SELECT seq, item_id, text, label, image, has_text FROM kiln_feedback WHERE seq > $1 ORDER BY seq LIMIT $2",
        {after, limit});
    db_->commit();
  } catch (...) {
    db_->rollback();
    throw;
  }
  std::vector<FeedbackItem> out;
  for (int i = 0; i < rows.size(); ++i) {
    FeedbackItem item;
    item.seq = rows.i64(i, 0);
    item.id = rows.text(i, 1);
    if (rows.i64(i, 5) != 0) item.example.text = rows.text(i, 2);
    item.example.label = rows.text(i, 3);
    if (!rows.null(i, 4)) {
      item.example.image = data::ImageRef{(fs::absolute(path_).parent_path() / rows.text(i, 4)).lexically_normal().string(), {}};
    }
    item.where = path_ + " item " + std::to_string(item.seq);
    out.push_back(std::move(item));
  }
  return out;
}

int64_t FeedbackLog::size() {
  std::lock_guard<std::mutex> lock(mu_);
  db_->begin(tune::SqlConnection::Access::kRead);
  const auto rows = db_->query("SELECT COUNT(*) FROM kiln_feedback");
  db_->commit();
  return rows.i64(0, 0);
}

int64_t FeedbackLog::last_seq() {
  std::lock_guard<std::mutex> lock(mu_);
  db_->begin(tune::SqlConnection::Access::kRead);
  const auto rows = db_->query("SELECT COALESCE(MAX(seq), 0) FROM kiln_feedback");
  db_->commit();
  return rows.i64(0, 0);
}

}  // namespace kiln::learn
