#include "package_fetch.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/subprocess.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr int kStderrLines = 8;

// Runs argv. Throws IoError with `hint` when the child fails or times out, and
// with `missing_hint` when the program is not in PATH.
void run_step(const std::vector<std::string>& argv, const fs::path& cwd, int timeout_s,
                const std::string& hint, const std::string& missing_hint) {
  if (timeout_s < 1) throw ConfigError("timeout must be >= 1 second, got " + std::to_string(timeout_s));
  core::SubprocessOptions opts;
  opts.cwd = cwd;
  opts.timeout_s = timeout_s;
  opts.kill_grace_s = 0;  // nothing to save: stop at once
  opts.tail_bytes = 64 << 10;
  core::SubprocessResult r;
  try {
    r = core::run_subprocess(argv, opts);
  } catch (const IoError& e) {
    std::string msg = e.what();
    if (msg.find("not found in PATH") != std::string::npos && !missing_hint.empty())
      msg += "; " + missing_hint;
    throw IoError(msg);
  }
  const std::string tail = core::last_lines(r.err_tail, kStderrLines);
  const std::string tail_part = tail.empty() ? std::string(" (no output on stderr)")
                                             : ":\n" + tail + "\n";
  if (r.timed_out)
    throw IoError("`" + core::command_line(argv) + "` did not finish within " + std::to_string(timeout_s) +
                  " s and was stopped" + tail_part + (tail.empty() ? "; " : "") + hint +
                  ", or allow more time with --timeout");
  if (r.exit_code != 0)
    throw IoError("`" + core::command_line(argv) + "` failed with exit status " +
                  std::to_string(r.exit_code) + tail_part + (tail.empty() ? "; " : "") + hint);
}

std::vector<fs::path> files_with_extension(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

fs::path npm_pack(const std::string& spec, const fs::path& dir, int timeout_s) {
  run_step({"npm", "pack", spec, "--ignore-scripts", "--loglevel=http", "--no-update-notifier"}, dir,
           timeout_s,
           "is the npm registry reachable? check `npm config get registry` and npm's proxy settings "
           "(`npm config set proxy ...` / `https-proxy`)",
           "install npm (Debian/Ubuntu: `apt-get install npm`)");
  const auto tgz = files_with_extension(dir, ".tgz");
  if (tgz.size() != 1)
    throw IoError("`npm pack " + spec + "` succeeded but left " + std::to_string(tgz.size()) +
                  " .tgz files in " + dir.string() + " (expected exactly 1)");
  return tgz.front();
}

std::vector<fs::path> apt_download(const std::vector<std::string>& packages, const fs::path& dir,
                                   int timeout_s) {
  std::vector<std::string> argv = {"apt-get", "download", "-q"};
  argv.insert(argv.end(), packages.begin(), packages.end());
  run_step(argv, dir, timeout_s,
           "is a Debian mirror reachable and are the package lists current? run `apt-get update`, and "
           "check /etc/apt/sources.list(.d) and apt's proxy setting (Acquire::http::Proxy)",
           "`apt-get download` needs a Debian-based system with apt");
  auto debs = files_with_extension(dir, ".deb");
  if (debs.size() != packages.size())
    throw IoError("`" + core::command_line(argv) + "` succeeded but left " + std::to_string(debs.size()) +
                  " .deb files in " + dir.string() + " (expected " +
                  std::to_string(packages.size()) + ")");
  return debs;
}

void extract_tgz(const fs::path& archive, const fs::path& dest, int timeout_s) {
  run_step({"tar", "-xzf", archive.string(), "-C", dest.string(), "--no-same-owner"}, {}, timeout_s,
           "the download may be truncated or corrupt; fetch it again with --force",
           "install tar (Debian/Ubuntu: `apt-get install tar`)");
}

void extract_deb(const fs::path& deb, const fs::path& dest, int timeout_s) {
  run_step({"dpkg-deb", "-x", deb.string(), dest.string()}, {}, timeout_s,
           "the download may be truncated or corrupt; fetch it again with --force",
           "dpkg-deb comes with dpkg on Debian-based systems");
}

fs::path gunzip_file(const fs::path& compressed, const std::string& suffix, int timeout_s) {
  const std::string name = compressed.filename().string();
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    throw IoError("cannot uncompress " + compressed.string() + ": its name does not end in '" + suffix + "'");
  run_step({"gzip", "-d", "-k", "-f", "-S", suffix, compressed.string()}, {}, timeout_s,
           "the download may be truncated or corrupt; fetch it again with --force",
           "install gzip (Debian/Ubuntu: `apt-get install gzip`)");
  return compressed.parent_path() / name.substr(0, name.size() - suffix.size());
}

}  // namespace kiln::data
