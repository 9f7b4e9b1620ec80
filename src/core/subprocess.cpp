#include "kiln/core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kiln/core/error.h"

extern char** environ;

namespace kiln::core {
namespace {

using Clock = std::chrono::steady_clock;

/// A line longer than this is passed on in pieces, so a child without newlines cannot exhaust memory.
constexpr std::size_t kMaxLine = 1 << 20;

struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    throw IoError(std::string("cannot create a pipe for a child process: ") + std::strerror(errno));
  }
  read_end.fd = p[0];
  write_end.fd = p[1];
}

/// argv[0] as given when it holds a '/', else the first executable match in PATH ("" if none).
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> order;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = kv.substr(0, eq);
    if (!vars.count(key)) order.push_back(key);
    vars[key] = kv.substr(eq + 1);
  }
  for (const auto& [key, value] : extra) {
    if (!vars.count(key)) order.push_back(key);
    vars[key] = value;
  }
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const auto& key : order) out.push_back(key + "=" + vars[key]);
  return out;
}

// Line splitting and the kept tail of one output stream.
struct StreamState {
  Fd fd;
  std::string pending;
  std::string tail;
  void keep(const char* data, std::size_t n, std::size_t limit) {
    tail.append(data, n);
    if (tail.size() > 2 * limit + 4096) tail.erase(0, tail.size() - limit);
  }
};

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
  while (start < text.size()) {
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

SubprocessResult run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options,
                                const LineHandler& on_line, const std::atomic<bool>* cancel) {
  if (argv.empty()) throw IoError("run_subprocess: empty command");
  if (options.timeout_s < 0) throw ConfigError("child timeout must be >= 0 seconds, got " + std::to_string(options.timeout_s));
  if (options.kill_grace_s < 0) {
    throw ConfigError("child kill grace must be >= 0 seconds, got " + std::to_string(options.kill_grace_s));
  }
  if (!options.cwd.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.cwd, ec)) {
      throw IoError("cannot run `" + command_line(argv) + "` in " + options.cwd.string() + ": not a directory");
    }
  }
  const std::string program = resolve_program(argv[0]);
  if (program.empty()) throw IoError("cannot run `" + command_line(argv) + "`: '" + argv[0] + "' was not found in PATH");

  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed in a multithreaded process.
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const std::vector<std::string> env_strings = child_environment(options.env);
  std::vector<char*> cenv;
  for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const std::string cwd = options.cwd.string();

  StreamState streams[2];
  Fd out_write, err_write, exec_read, exec_write;
  make_pipe(streams[0].fd, out_write);
  make_pipe(streams[1].fd, err_write);
  make_pipe(exec_read, exec_write);  // carries errno when exec fails; closed by a successful exec
  const pid_t parent = ::getpid();

  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError("cannot run `" + command_line(argv) + "`: fork failed: " + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    const int devnull = ::open("/dev/null", O_RDONLY);
    int err = 0;
    if (devnull < 0 || ::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(out_write.fd, STDOUT_FILENO) < 0 ||
        ::dup2(err_write.fd, STDERR_FILENO) < 0) {
      err = errno;
    } else if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      err = errno;
    } else {
      ::execve(program.c_str(), cargv.data(), cenv.data());
      err = errno;
    }
    ssize_t ignored = ::write(exec_write.fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also in the parent, so kill(-pid) works before the child ran setpgid
  out_write.reset();
  err_write.reset();
  exec_write.reset();
  {
    int child_errno = 0;
    ssize_t got;
    do {
      got = ::read(exec_read.fd, &child_errno, sizeof child_errno);
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof child_errno)) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw IoError("cannot run `" + command_line(argv) + "`: " + std::strerror(child_errno) +
                    (cwd.empty() ? "" : " (in " + cwd + ")"));
    }
  }

  SubprocessResult result;
  bool stopping = false, exited = false;
  int status = 0;
  Clock::time_point kill_at{}, exited_at{};
  const bool has_deadline = options.timeout_s > 0;
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.timeout_s));
  const auto grace = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.kill_grace_s));

  auto stop = [&]() {
    if (stopping) return;
    stopping = true;
    ::kill(-pid, SIGTERM);
    kill_at = Clock::now() + grace;
  };
  auto deliver = [&](int i, std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (stopping || !on_line) return;
    if (!on_line(static_cast<OutputStream>(i), line)) {
      result.stopped = true;
      stop();
    }
  };

  char buf[65536];
  while (true) {
    const bool open0 = streams[0].fd.fd >= 0, open1 = streams[1].fd.fd >= 0;
    if (exited && !open0 && !open1) break;
    const auto now = Clock::now();
    if (!stopping && cancel && cancel->load()) {
      result.stopped = true;
      stop();
    }
    if (!stopping && has_deadline && now >= deadline) {
      result.timed_out = true;
      stop();
    }
    if (stopping && !exited && now >= kill_at) ::kill(-pid, SIGKILL);
    // A descendant that left the group may hold the pipes open after the child exited: stop
    // reading after a short grace.
    if (exited && now - exited_at > std::chrono::seconds(2)) {
      ::kill(-pid, SIGKILL);
      break;
    }
    struct pollfd fds[2] = {{streams[0].fd.fd, POLLIN, 0}, {streams[1].fd.fd, POLLIN, 0}};
    const int n = (open0 || open1) ? ::poll(fds, 2, 50) : (::usleep(20000), 0);
    if (n < 0 && errno != EINTR) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw IoError("poll() on `" + command_line(argv) + "` failed: " + std::strerror(errno));
    }
    for (int i = 0; i < 2 && n > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      StreamState& s = streams[i];
      if (got <= 0) {
        if (!s.pending.empty()) deliver(i, std::move(s.pending));
        s.pending.clear();
        s.fd.reset();
        continue;
      }
      s.keep(buf, static_cast<std::size_t>(got), options.tail_bytes);
      s.pending.append(buf, static_cast<std::size_t>(got));
      std::size_t pos = 0;
      while (true) {
        const std::size_t nl = s.pending.find('\n', pos);
        if (nl == std::string::npos) break;
        deliver(i, s.pending.substr(pos, nl - pos));
        pos = nl + 1;
      }
      s.pending.erase(0, pos);
      if (s.pending.size() > kMaxLine) {
        deliver(i, std::move(s.pending));
        s.pending.clear();
      }
    }
    if (!exited) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        exited = true;
        exited_at = Clock::now();
        result.seconds = std::chrono::duration<double>(exited_at - start).count();
      }
    }
  }
  if (!exited) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  if (stopping) ::kill(-pid, SIGKILL);  // whatever of the group is left
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  } else {
    result.exit_code = -1;
  }
  for (int i = 0; i < 2; ++i) {
    std::string& t = streams[i].tail;
    if (t.size() > options.tail_bytes) t.erase(0, t.size() - options.tail_bytes);
  }
  result.out_tail = std::move(streams[0].tail);
  result.err_tail = std::move(streams[1].tail);
  return result;
}

}  // namespace kiln::core
