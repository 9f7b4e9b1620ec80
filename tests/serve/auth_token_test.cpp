#include "kiln/serve/auth_token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/serve/server.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

class AuthTokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_auth_token_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents, mode_t mode) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << contents;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  std::string error_of(const std::string& path) {
    try {
      (void)serve::read_auth_token_file(path);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

}  // namespace

TEST_F(AuthTokenFileTest, ReadsTheFirstLineWithoutTrailingSpace) {
  const auto t = serve::read_auth_token_file(write("token", "0123456789abcdef-xyz \t\r\nsecond line\n", 0600));
  EXPECT_EQ(t.token, "0123456789abcdef-xyz");
  EXPECT_FALSE(t.readable_by_others);
}

TEST_F(AuthTokenFileTest, ReportsAFileOthersCanRead) {
  EXPECT_TRUE(serve::read_auth_token_file(write("token", "0123456789abcdef\n", 0644)).readable_by_others);
}

TEST_F(AuthTokenFileTest, RejectsAShortToken) {
  const auto path = write("short", "short-token\n", 0600);
  const auto msg = error_of(path);
  EXPECT_NE(msg.find("auth token file " + path + ": the token has 11 characters; use at least 16"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("head -c 32 /dev/urandom | base64"), std::string::npos) << msg;
}

TEST_F(AuthTokenFileTest, RejectsAMissingFileAndADirectory) {
  const auto missing = (dir_ / "missing").string();
  EXPECT_NE(error_of(missing).find("auth token file " + missing + ": not a readable file; write the token"),
            std::string::npos)
      << error_of(missing);
  EXPECT_NE(error_of(dir_.string()).find(": not a readable file"), std::string::npos) << error_of(dir_.string());
}

TEST(ServerOptions, RejectsAShortAuthToken) {
  serve::ServerOptions o;
  o.auth_token = "abc";
  try {
    o.validate();
    FAIL() << "a 3-character token was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("serve.auth_token has 3 characters; use at least 16"), std::string::npos)
        << e.what();
  }
  o.auth_token = std::string(serve::kMinAuthTokenChars, 'x');
  EXPECT_NO_THROW(o.validate());
  o.auth_token.clear();
  EXPECT_NO_THROW(o.validate());
}
