#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "kiln/core/error.h"

extern char** environ;

namespace kiln::data {
namespace {

// Closes both ends of a pipe on scope exit unless released.
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int& f : fd)
      if (f >= 0) ::close(f);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

void make_pipe(Pipe& p) {
  if (::pipe2(p.fd, O_CLOEXEC) != 0)
    throw IoError(std::string("cannot create a pipe for a child process: ") + std::strerror(errno));
}

struct SpawnResources {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnResources() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnResources() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

std::string last_lines(const std::string& text, int n) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
  }
  std::string out;
  const std::size_t first = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

ChildResult run_child(const std::vector<std::string>& argv, const ChildOptions& options) {
  if (argv.empty()) throw IoError("run_child: empty command");
  if (options.timeout_s < 1)
    throw ConfigError("timeout must be >= 1 second, got " + std::to_string(options.timeout_s));

  if (!options.cwd.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.cwd, ec))
      throw IoError("cannot run `" + command_line(argv) + "` in " + options.cwd.string() +
                    ": not a directory");
  }

  Pipe out_pipe, err_pipe;
  make_pipe(out_pipe);
  make_pipe(err_pipe);

  SpawnResources res;
  posix_spawn_file_actions_addopen(&res.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&res.actions, out_pipe.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&res.actions, err_pipe.fd[1], STDERR_FILENO);
  if (!options.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&res.actions, options.cwd.c_str());
  // Own process group, so a timeout kills the child's children too.
  posix_spawnattr_setpgroup(&res.attr, 0);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  posix_spawnattr_setsigdefault(&res.attr, &default_signals);
  posix_spawnattr_setflags(&res.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, cargv[0], &res.actions, &res.attr, cargv.data(), environ);
  if (rc != 0) {
    if (rc == ENOENT)
      throw IoError("cannot run `" + command_line(argv) + "`: '" + argv[0] + "' was not found in PATH");
    throw IoError("cannot run `" + command_line(argv) + "`: " + std::strerror(rc));
  }
  out_pipe.close_end(1);
  err_pipe.close_end(1);

  ChildResult result;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
  struct pollfd fds[2] = {{out_pipe.fd[0], POLLIN, 0}, {err_pipe.fd[0], POLLIN, 0}};
  char buf[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      ::kill(-pid, SIGKILL);
      wait_for(pid);
      throw IoError("poll() on `" + command_line(argv) + "` failed: " + std::strerror(errno));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;  // closed by Pipe's destructor
        continue;
      }
      if (i == 0) {
        const std::size_t room = options.max_stdout - std::min(options.max_stdout, result.out.size());
        result.out.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
      } else {
        result.err.append(buf, static_cast<std::size_t>(got));
        if (result.err.size() > 2 * options.max_stderr)
          result.err.erase(0, result.err.size() - options.max_stderr);
      }
    }
  }
  if (result.timed_out) ::kill(-pid, SIGKILL);
  result.exit_code = wait_for(pid);
  if (result.err.size() > options.max_stderr)
    result.err.erase(0, result.err.size() - options.max_stderr);
  return result;
}

TempDir::TempDir(const std::string& prefix, const std::filesystem::path& parent) {
  std::error_code ec;
  std::filesystem::path base = parent.empty() ? std::filesystem::temp_directory_path(ec) : parent;
  if (ec) base = "/tmp";
  std::string templ = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr)
    throw IoError("cannot create a temporary directory under " + base.string() + ": " +
                  std::strerror(errno) + "; check that it exists and is writable (or set TMPDIR)");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace kiln::data
