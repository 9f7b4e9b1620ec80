#include "temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "kiln/core/error.h"

namespace kiln::data {

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
