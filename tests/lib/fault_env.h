// A core::Env that counts the operations of a durable write and makes one of them fail, and a
// driver that fails each operation of a write in turn and checks what is left on disk (after
// LevelDB's fault-injection tests). Header-only: included by the fault tests of several modules.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

#include "kiln/core/env.h"
#include "kiln/core/error.h"

namespace kiln::faults {

/// Forwards to core::posix_env(), numbering every operation that creates, writes, syncs, closes or
/// renames (remove is cleanup of temporaries and is counted apart, never failed). Operation number
/// `fail_at` (0-based; -1 = none) fails with `error` instead of running (close still releases the
/// descriptor). Thread-safe.
class FaultEnv final : public core::Env {
 public:
  explicit FaultEnv(long fail_at = -1, int error = ENOSPC) : fail_at_(fail_at), error_(error) {}

  /// Operations seen so far (removes excluded).
  [[nodiscard]] long operations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  /// "fsync /tmp/x/.kiln.json.tmp-1-2" for the failed operation; "" when none failed.
  [[nodiscard]] std::string failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  /// The path of the failed operation (the destination for rename and exchange).
  [[nodiscard]] std::filesystem::path failed_path() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_path_;
  }
  /// Every operation, one per line, for messages.
  [[nodiscard]] std::string log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_.str();
  }

  int open_for_write(const std::filesystem::path& path, int* fd) override {
    if (inject("open", path)) return error_;
    const int err = core::posix_env().open_for_write(path, fd);
    if (err == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      paths_[*fd] = path;
    }
    return err;
  }
  int write(int fd, const void* data, std::size_t n, std::size_t* written) override {
    if (inject("write", path_of(fd))) return error_;
    return core::posix_env().write(fd, data, n, written);
  }
  int fsync(int fd) override {
    if (inject("fsync", path_of(fd))) return error_;
    return core::posix_env().fsync(fd);
  }
  int close(int fd) override {
    const bool fail = inject("close", path_of(fd));
    const int err = core::posix_env().close(fd);
    return fail ? error_ : err;
  }
  int rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (inject("rename", to, from)) return error_;
    return core::posix_env().rename(from, to);
  }
  int exchange(const std::filesystem::path& a, const std::filesystem::path& b) override {
    if (inject("exchange", b, a)) return error_;
    return core::posix_env().exchange(a, b);
  }
  int fsync_dir(const std::filesystem::path& dir) override {
    if (inject("fsync_dir", dir)) return error_;
    return core::posix_env().fsync_dir(dir);
  }
  int remove(const std::filesystem::path& path) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_ << "  remove " << path.string() << "\n";
    }
    return core::posix_env().remove(path);
  }
  int mkdir(const std::filesystem::path& path) override {
    if (inject("mkdir", path)) return error_;
    return core::posix_env().mkdir(path);
  }

 private:
  std::filesystem::path path_of(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_[fd];
  }
  bool inject(const char* op, const std::filesystem::path& path, const std::filesystem::path& from = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    const long n = count_++;
    const std::string what = std::string(op) + " " + (from.empty() ? "" : from.string() + " -> ") + path.string();
    log_ << n << " " << what << "\n";
    if (n != fail_at_) return false;
    failed_ = what;
    failed_path_ = path;
    return true;
  }

  mutable std::mutex mu_;
  long fail_at_;
  int error_;
  long count_ = 0;
  std::string failed_;
  std::filesystem::path failed_path_;
  std::map<int, std::filesystem::path> paths_;
  std::ostringstream log_;
};

/// Every file and folder under `root`: relative path -> contents ("<dir>" for a folder).
using Snapshot = std::map<std::string, std::string>;

inline Snapshot snapshot(const std::filesystem::path& root) {
  Snapshot s;
  if (!std::filesystem::exists(root)) return s;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    const std::string rel = std::filesystem::relative(e.path(), root).string();
    if (e.is_directory()) {
      s[rel] = "<dir>";
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      s[rel] = ss.str();
    }
  }
  return s;
}

/// Names in `s` that look like the atomic writer's temporaries (".NAME.tmp-<pid>-<n>").
inline std::string temporaries(const Snapshot& s) {
  std::string out;
  for (const auto& [rel, contents] : s) {
    if (rel.find(".tmp-") != std::string::npos) out += rel + " ";
  }
  return out;
}

/// "kiln.json" for "/r/m/.kiln.json.tmp-12-3", "model" for "/r/.model.tmp-12-4": the name a
/// person knows for the file behind a temporary.
inline std::string final_name(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  const auto tmp = name.find(".tmp-");
  if (tmp != std::string::npos && !name.empty() && name[0] == '.') name = name.substr(1, tmp - 1);
  return name;
}

/// What must be whole: the tree under root (a directory written through one AtomicDirectory), or
/// each file on its own (files written one after another, each through its own AtomicFile).
enum class Unit { kWholeTree, kEachFile };

/// Whether `now` is `before` or `after` as a whole (kWholeTree), or each path of `now` is as it was
/// before or after, present or absent (kEachFile).
inline bool old_or_new(const Snapshot& before, const Snapshot& after, const Snapshot& now, Unit unit) {
  if (unit == Unit::kWholeTree) return now == before || now == after;
  std::map<std::string, int> keys;
  for (const auto* s : {&before, &after, &now}) {
    for (const auto& kv : *s) keys[kv.first] = 1;
  }
  auto get = [](const Snapshot& s, const std::string& k) -> const std::string* {
    const auto it = s.find(k);
    return it == s.end() ? nullptr : &it->second;
  };
  for (const auto& kv : keys) {
    const std::string* n = get(now, kv.first);
    const std::string* b = get(before, kv.first);
    const std::string* a = get(after, kv.first);
    auto same = [](const std::string* x, const std::string* y) { return x == y || (x && y && *x == *y); };
    if (!same(n, b) && !same(n, a)) {
      ADD_FAILURE() << kv.first << " is neither its old nor its new version";
      return false;
    }
  }
  return true;
}

/// Fails each operation of `write` in turn and checks the promise of the atomic writer.
///
/// `reset` puts `root` back into the state before the write (fresh, or an earlier version to
/// replace); `write` performs the write once. First `write` runs under a counting FaultEnv (it
/// must succeed); what it leaves is the "after" state. Then for each operation i: reset, run
/// `write` with operation i failing (ENOSPC), and expect (1) an IoError whose message names the
/// file behind the failed operation and the fix, and (2) `root` to hold the "before" or the
/// "after" state (see Unit), with no temporaries left. `also` (optional) checks more of each
/// outcome. Returns the number of operations.
inline long check_every_failure(
    const std::filesystem::path& root, const std::function<void()>& reset, const std::function<void()>& write,
    Unit unit = Unit::kWholeTree,
    const std::function<void(const Snapshot& before, const Snapshot& after, const Snapshot& now)>& also = {}) {
  reset();
  const Snapshot before = snapshot(root);
  long count = 0;
  {
    FaultEnv counting;
    core::ScopedEnv scope(counting);
    write();
    count = counting.operations();
  }
  const Snapshot after = snapshot(root);
  EXPECT_GT(count, 0);
  EXPECT_EQ(temporaries(after), "");
  EXPECT_NE(before, after) << "the write changed nothing: the test cannot tell old from new";
  for (long i = 0; i < count; ++i) {
    reset();
    FaultEnv faulty(i, ENOSPC);
    std::string message;
    {
      core::ScopedEnv scope(faulty);
      try {
        write();
      } catch (const IoError& e) {
        message = e.what();
      }
    }
    SCOPED_TRACE("failing operation " + std::to_string(i) + " of " + std::to_string(count) + ": " + faulty.failed() +
                 "\noperations:\n" + faulty.log());
    EXPECT_FALSE(message.empty()) << "no IoError";
    EXPECT_NE(message.find("writing "), std::string::npos) << message;
    EXPECT_NE(message.find(final_name(faulty.failed_path())), std::string::npos) << message;
    EXPECT_NE(message.find("No space left on device; free disk space and retry"), std::string::npos) << message;
    const Snapshot now = snapshot(root);
    EXPECT_EQ(temporaries(now), "");
    EXPECT_TRUE(old_or_new(before, after, now, unit))
        << "neither the old nor the new version: " << now.size() << " entries, before " << before.size()
        << ", after " << after.size();
    if (also) also(before, after, now);
  }
  return count;
}

}  // namespace kiln::faults
