#include "kiln/core/atomic_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "kiln/core/env.h"
#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace kiln::core {
namespace {

constexpr std::size_t kBufferBytes = 64 << 10;
/// Written bytes after which AtomicFile asks the kernel to start writing them to disk.
constexpr std::size_t kWritebackBytes = 4 << 20;

std::atomic<unsigned> g_counter{0};

fs::path parent_of(const fs::path& p) {
  fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

fs::path temp_sibling(const fs::path& target) {
  return parent_of(target) / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                              std::to_string(g_counter.fetch_add(1)));
}

/// What a person can do about `err`.
std::string fix_for(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT: return "free disk space and retry";
    case EACCES:
    case EPERM:
    case EROFS: return "check that the directory is writable";
    case EIO: return "check the disk (dmesg) and retry";
    case ENOENT:
    case ENOTDIR: return "check the path";
    default: return "check the path, its permissions and free disk space";
  }
}

/// "writing out/kiln.json: fsync failed: No space left on device; free disk space and retry".
[[noreturn]] void fail(const fs::path& target, const char* step, int err) {
  throw IoError("writing " + target.string() + ": " + step + " failed: " + std::strerror(err) + "; " + fix_for(err));
}

/// Removes the (empty) directories a failed write created, innermost first; best effort.
void remove_created(const std::vector<fs::path>& created) {
  for (auto it = created.rbegin(); it != created.rend(); ++it) (void)current_env().remove(*it);
}

/// Creates `dir` and its missing parents through the Env, appending those it created to
/// `created` (outermost first). On failure removes them again and throws IoError.
void make_directories(const fs::path& dir, const fs::path& for_target, std::vector<fs::path>& created) {
  if (dir.empty()) return;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  const fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) make_directories(parent, for_target, created);
  const int err = current_env().mkdir(dir);
  if (err == 0) {
    created.push_back(dir);
  } else if (!(err == EEXIST && fs::is_directory(dir, ec))) {
    remove_created(created);
    throw IoError("writing " + for_target.string() + ": cannot create directory " + dir.string() + ": " +
                  std::strerror(err) + "; " + fix_for(err));
  }
}

/// Removes `path` and, for a directory, everything in it, through the Env; best effort (cleanup of
/// a temporary: a failure leaves a stray `.NAME.tmp-*` that is safe to delete by hand).
void remove_tree(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(path, ec))) {
    std::vector<fs::path> children;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) children.push_back(it->path());
    for (const auto& c : children) remove_tree(c);
  }
  (void)current_env().remove(path);
}

}  // namespace

// ---- AtomicFile ----
// A target that is a special file (a device such as /dev/null, a FIFO, a socket) is written in
// place: renaming a new file over it would replace the device itself (`--json /dev/null` run as
// root once turned /dev/null into a regular file). A target that is a symlink to a regular file
// keeps the link; the file it points to is replaced.

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)), shown_(target_) { open(); }

AtomicFile::AtomicFile(const AtomicDirectory& dir, const fs::path& name)
    : target_(dir.path() / name), shown_(dir.target() / name) {
  // The directory's temporary is seen by no one until it is committed whole, so a new file at its
  // top is written under its own name: no temporary sibling, no rename, no fsync of the directory
  // per file (the directory's commit fsyncs it). A name already written, or one in a subdirectory,
  // goes the usual way.
  std::error_code ec;
  in_directory_ = !fs::exists(fs::symlink_status(target_, ec)) && target_.parent_path() == dir.path();
  open();
}

void AtomicFile::open() {
  std::error_code ec;
  const fs::file_status st = fs::status(target_, ec);  // through symlinks
  if (!ec && fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st)) {
    // /dev/null, a pipe, a socket: renaming a new file over it would replace the device itself.
    // temp_ stays empty: that marks the in-place mode. Not through the Env: there is no
    // temporary, rename or fsync here for a fault to interrupt.
    do {
      fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) {
      const int err = errno;
      fd_ = -1;
      fail(shown_, "opening", err);
    }
    buffer_.reset(new char[kBufferBytes]);
    return;
  }
  if (!ec && fs::is_regular_file(st) && fs::is_symlink(fs::symlink_status(target_, ec))) {
    const fs::path resolved = fs::canonical(target_, ec);  // keep the link, replace its file
    if (!ec) target_ = resolved;
  }
  make_directories(target_.parent_path(), shown_, created_);
  temp_ = in_directory_ ? target_ : temp_sibling(target_);
  const int err = current_env().open_for_write(temp_, &fd_);
  if (err != 0) {
    fd_ = -1;
    remove_created(created_);
    fail(shown_, "creating a temporary file", err);
  }
  buffer_.reset(new char[kBufferBytes]);
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  close_fd();
  if (temp_.empty()) return;  // written in place: nothing of ours to remove
  (void)current_env().remove(temp_);
  remove_created(created_);
}

void AtomicFile::close_fd() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  (void)current_env().close(fd);
}

void AtomicFile::write_through(const char* data, std::size_t n) {
  if (fd_ < 0) throw IoError("writing " + shown_.string() + ": the file was already committed or abandoned");
  Env& env = current_env();
  while (n > 0) {
    std::size_t written = 0;
    const int err = env.write(fd_, data, std::min<std::size_t>(n, std::size_t{1} << 30), &written);
    if (err != 0) fail(shown_, "write", err);
    data += written;
    n -= written;
    written_ += written;
  }
  // Start the disk writing what is written so far, without waiting for it, so that commit()'s fsync
  // finds little left to do: a large file's writeback overlaps the producing of the rest. Advisory:
  // its errors are fsync's to report.
  if (!temp_.empty() && written_ - writeback_from_ >= kWritebackBytes) {
    (void)::sync_file_range(fd_, static_cast<off_t>(writeback_from_), static_cast<off_t>(written_ - writeback_from_),
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = written_;
  }
}

void AtomicFile::flush() {
  if (buffered_ == 0) return;
  const std::size_t n = buffered_;
  buffered_ = 0;
  write_through(buffer_.get(), n);
}

void AtomicFile::write(const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  if (buffered_ + n <= kBufferBytes) {
    if (n > 0) std::memcpy(buffer_.get() + buffered_, p, n);
    buffered_ += n;
    return;
  }
  flush();
  if (n >= kBufferBytes) {
    write_through(p, n);
  } else {
    std::memcpy(buffer_.get(), p, n);
    buffered_ = n;
  }
}

void AtomicFile::write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

void AtomicFile::commit() {
  if (committed_) return;
  flush();
  Env& env = current_env();
  if (temp_.empty()) {  // a device or pipe, written in place: nothing to sync or rename
    const int fd = fd_;
    fd_ = -1;
    committed_ = true;
    if (int err = env.close(fd); err != 0) fail(shown_, "close", err);
    return;
  }
  if (int err = env.fsync(fd_); err != 0) fail(shown_, "fsync", err);
  const int fd = fd_;
  fd_ = -1;
  if (int err = env.close(fd); err != 0) fail(shown_, "close", err);
  if (temp_ != target_) {
    if (int err = env.rename(temp_, target_); err != 0) fail(shown_, "rename into place", err);
  }
  committed_ = true;  // the complete file is in place: nothing left to remove
  // A file written under its own name at the top of a directory's temporary: that directory's
  // commit fsyncs the temporary.
  if (in_directory_) return;
  if (int err = env.fsync_dir(parent_of(target_)); err != 0) fail(shown_, "fsync of its directory", err);
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

// ---- AtomicDirectory ---------------------------------------------------------------------------

AtomicDirectory::AtomicDirectory(fs::path target) : target_(std::move(target)) {
  if (target_.filename().empty()) target_ = target_.parent_path();  // "out/" -> "out"
  std::error_code ec;
  if (fs::exists(target_, ec) && !fs::is_directory(target_, ec)) {
    throw IoError(target_.string() + ": exists and is not a directory; choose another output path");
  }
  make_directories(target_.parent_path(), target_, created_);
  temp_ = temp_sibling(target_);
  if (int err = current_env().mkdir(temp_); err != 0) {
    remove_created(created_);
    fail(target_, "creating a temporary directory", err);
  }
}

AtomicDirectory::~AtomicDirectory() {
  if (committed_) return;
  remove_tree(temp_);
  remove_created(created_);
}

void AtomicDirectory::write_file(const fs::path& name, std::string_view content) const {
  AtomicFile f(*this, name);
  f.write(content);
  f.commit();
}

void AtomicDirectory::commit() {
  if (committed_) return;
  Env& env = current_env();
  const fs::path parent = parent_of(target_);
  if (int err = env.fsync_dir(temp_); err != 0) fail(target_, "fsync of the new directory", err);
  std::error_code ec;
  if (!fs::exists(target_, ec)) {
    if (int err = env.rename(temp_, target_); err != 0) fail(target_, "rename into place", err);
    committed_ = true;
    if (int err = env.fsync_dir(parent); err != 0) fail(target_, "fsync of its parent directory", err);
    return;
  }
  // Replace: swap in one step where the file system can, so no moment leaves `target` missing.
  fs::path old;
  int err = env.exchange(temp_, target_);
  if (err == 0) {
    old = temp_;  // now holds the previous output
  } else if (err == EINVAL || err == ENOSYS || err == ENOTSUP) {
    old = temp_sibling(target_);
    if (err = env.rename(target_, old); err != 0) fail(target_, "moving the existing output aside", err);
    if (err = env.rename(temp_, target_); err != 0) {
      (void)env.rename(old, target_);  // put the previous output back
      fail(target_, "rename into place", err);
    }
  } else {
    fail(target_, "swapping the new output into place", err);
  }
  committed_ = true;
  err = env.fsync_dir(parent);
  remove_tree(old);
  if (err != 0) fail(target_, "fsync of its parent directory", err);
}

void require_regular_file(const fs::path& path, std::string_view what) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    throw IoError(path.string() + ": " + std::string(what) + " not found; check the path");
  }
  if (fs::is_directory(st)) {
    throw IoError(path.string() + ": is a directory, expected " + std::string(what) +
                  "; name a file inside it");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError(path.string() + ": cannot open " + std::string(what) + ": " + std::strerror(errno) +
                  "; check its permissions");
  }
}

std::string read_file(const fs::path& path) {
  require_regular_file(path, "file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path.string() + ": read failed");
  return ss.str();
}

}  // namespace kiln::core
