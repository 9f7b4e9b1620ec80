#include "kiln/core/env.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace kiln::core {
namespace {

class PosixEnv final : public Env {
 public:
  int open_for_write(const std::filesystem::path& path, int* fd) override {
    int f;
    do {
      f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    } while (f < 0 && errno == EINTR);
    if (f < 0) return errno;
    *fd = f;
    return 0;
  }

  int write(int fd, const void* data, std::size_t n, std::size_t* written) override {
    while (true) {
      const ssize_t w = ::write(fd, data, n);
      if (w > 0) {
        *written = static_cast<std::size_t>(w);
        return 0;
      }
      if (w < 0 && errno == EINTR) continue;
      return w == 0 ? EIO : errno;
    }
  }

  int fsync(int fd) override { return ::fsync(fd) == 0 ? 0 : errno; }

  int close(int fd) override {
    // Linux releases the descriptor even when close fails (EINTR included): never retry.
    return ::close(fd) == 0 ? 0 : errno;
  }

  int rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }

  int exchange(const std::filesystem::path& a, const std::filesystem::path& b) override {
#if defined(SYS_renameat2)
    constexpr unsigned kRenameExchange = 1u << 1;  // RENAME_EXCHANGE, <linux/fs.h>
    return ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), kRenameExchange) == 0 ? 0 : errno;
#else
    (void)a;
    (void)b;
    return ENOSYS;
#endif
  }

  int fsync_dir(const std::filesystem::path& dir) override {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = ::fsync(fd) == 0 ? 0 : errno;
    // Some file systems cannot sync a directory; that is not a failure of the data's durability.
    if (err == EINVAL || err == EROFS) err = 0;
    ::close(fd);
    return err;
  }

  int remove(const std::filesystem::path& path) override { return ::remove(path.c_str()) == 0 ? 0 : errno; }

  int mkdir(const std::filesystem::path& path) override { return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno; }
};

std::atomic<Env*> g_env{nullptr};

}  // namespace

Env& posix_env() {
  static PosixEnv env;
  return env;
}

Env& current_env() {
  Env* e = g_env.load(std::memory_order_acquire);
  return e ? *e : posix_env();
}

ScopedEnv::ScopedEnv(Env& env) : previous_(g_env.exchange(&env, std::memory_order_acq_rel)) {}

ScopedEnv::~ScopedEnv() { g_env.store(previous_, std::memory_order_release); }

}  // namespace kiln::core
