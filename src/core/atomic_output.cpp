#include "kiln/core/atomic_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace kiln::core {
namespace {

std::atomic<unsigned> g_counter{0};

fs::path temp_sibling(const fs::path& target) {
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  std::string name = "." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(g_counter.fetch_add(1));
  return parent / name;
}

void ensure_parent(const fs::path& target) {
  fs::path parent = target.parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    throw IoError(parent.string() + ": cannot create directory: " + ec.message() +
                  "; check the path and its permissions");
  }
}

}  // namespace

AtomicDirectory::AtomicDirectory(fs::path target) : target_(std::move(target)) {
  if (target_.filename().empty()) target_ = target_.parent_path();  // "out/" -> "out"
  if (fs::exists(target_) && !fs::is_directory(target_)) {
    throw IoError(target_.string() + ": exists and is not a directory; choose another output path");
  }
  ensure_parent(target_);
  temp_ = temp_sibling(target_);
  std::error_code ec;
  fs::create_directory(temp_, ec);
  if (ec) {
    throw IoError(temp_.string() + ": cannot create temporary output directory: " + ec.message() +
                  "; check that the parent directory is writable");
  }
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
}

void AtomicDirectory::commit() {
  if (committed_) return;
  std::error_code ec;
  fs::path old;
  if (fs::exists(target_)) {
    old = temp_sibling(target_);
    fs::rename(target_, old, ec);
    if (ec) {
      throw IoError(target_.string() + ": cannot move the existing output aside: " + ec.message());
    }
  }
  fs::rename(temp_, target_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, target_, ec);  // put the previous output back
    throw IoError(target_.string() + ": cannot move output into place: " + ec.message());
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  ensure_parent(path);
  fs::path tmp = temp_sibling(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw IoError(path.string() + ": cannot write: " + std::strerror(errno) +
                  "; check that the directory exists and is writable");
  }
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IoError(path.string() + ": write failed: " + std::strerror(err) + " (disk full?)");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(path.string() + ": cannot move into place: " + ec.message());
  }
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
