// Downloads packages through their registries' own clients (npm pack, apt-get download) and unpacks
// them with tar / dpkg-deb. Every step is a child process with a time limit; no host or URL is
// named here: npm's and apt's own configuration (registry, mirrors, proxies) decides where to go.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::data {

/// Runs `npm pack SPEC` in `dir` and returns the path of the .tgz it wrote there. Throws IoError
/// naming the command, its last stderr lines and what to check (registry, proxy, --timeout); npm
/// missing from PATH gives an IoError suggesting `apt-get install npm`.
[[nodiscard]] std::filesystem::path npm_pack(const std::string& spec, const std::filesystem::path& dir,
                                             int timeout_s);

/// Runs `apt-get download PACKAGE...` in `dir` and returns the .deb files it wrote there, sorted.
/// Throws IoError as npm_pack does (hints: apt-get update, mirrors, Acquire::http::Proxy).
[[nodiscard]] std::vector<std::filesystem::path> apt_download(const std::vector<std::string>& packages,
                                                              const std::filesystem::path& dir,
                                                              int timeout_s);

/// Unpacks a gzip'd tar archive into the existing directory `dest` (`tar -xzf`). Throws IoError.
void extract_tgz(const std::filesystem::path& archive, const std::filesystem::path& dest, int timeout_s);

/// Unpacks a Debian package's files into the existing directory `dest` (`dpkg-deb -x`). Throws
/// IoError.
void extract_deb(const std::filesystem::path& deb, const std::filesystem::path& dest, int timeout_s);

/// Uncompresses the gzip (or dictzip) file `compressed`, whose name ends in `suffix` (".gz",
/// ".dz"), next to itself (`gzip -d -k -f -S SUFFIX`) and returns the new file's path: the same
/// name without the suffix. Throws IoError.
[[nodiscard]] std::filesystem::path gunzip_file(const std::filesystem::path& compressed,
                                                const std::string& suffix, int timeout_s);

}  // namespace kiln::data
