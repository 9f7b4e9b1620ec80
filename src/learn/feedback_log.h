// Private: the server's durable feedback log, a SQLite database in WAL mode (on the one SQL
// connection Kiln has, tune's SqlConnection) with synchronous=FULL, so an item is on disk before
// append() returns: a crash (kill -9, power loss) loses no acknowledged item. Ids are unique: an
// item whose id the log already holds (or that repeats one in the same append) is a duplicate and
// is not stored. An item's image (its PNG/JPEG bytes, FeedbackItem::example.image->bytes) is written
// to images/SEQ.png (or .jpg) beside the database, fsynced before the transaction that stores its
// row commits; the log reads it back as that file's absolute path. Thread-safe (one mutex around the
// connection).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/learn/feedback_stream.h"

namespace kiln::tune {
class SqlConnection;
}

namespace kiln::learn {

struct AppendResult {
  int64_t accepted = 0, duplicates = 0;
};

class FeedbackLog {
 public:
  /// Opens (creating when absent) the log at `path`. Throws IoError naming the file for one that
  /// cannot be opened or is not a SQLite database, DataError for a database that is not a log.
  explicit FeedbackLog(const std::string& path);
  ~FeedbackLog();
  FeedbackLog(const FeedbackLog&) = delete;
  FeedbackLog& operator=(const FeedbackLog&) = delete;

  /// Stores the items that are not duplicates in one transaction, durable when it returns. An
  /// item's image must be given as bytes (ImageRef::bytes).
  AppendResult append(const std::vector<FeedbackItem>& items);
  /// Up to `limit` items with seq > `after`, in order (FeedbackItem::seq and ::where set).
  [[nodiscard]] std::vector<FeedbackItem> read_after(int64_t after, int64_t limit);
  /// Items stored; the highest seq (0 when empty).
  [[nodiscard]] int64_t size();
  [[nodiscard]] int64_t last_seq();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::mutex mu_;
  std::unique_ptr<tune::SqlConnection> db_;
};

}  // namespace kiln::learn
