#include "kiln/core/atomic_output.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_core_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
}  // namespace

TEST(AtomicDirectory, AbandonedOutputLeavesNothing) {
  fs::path root = fresh_dir("abandon");
  {
    kiln::core::AtomicDirectory out(root / "out");
    std::ofstream(out.path() / "a.txt") << "x";
  }
  EXPECT_FALSE(fs::exists(root / "out"));
  EXPECT_TRUE(fs::is_empty(root));
}

TEST(AtomicDirectory, CommitReplacesExistingOutput) {
  fs::path root = fresh_dir("commit");
  fs::create_directories(root / "out");
  std::ofstream(root / "out" / "old.txt") << "old";
  {
    kiln::core::AtomicDirectory out(root / "out");
    std::ofstream(out.path() / "new.txt") << "new";
    out.commit();
  }
  EXPECT_TRUE(fs::exists(root / "out" / "new.txt"));
  EXPECT_FALSE(fs::exists(root / "out" / "old.txt"));
  int entries = 0;
  for (auto& e : fs::directory_iterator(root)) { (void)e; ++entries; }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicDirectory, TargetThatIsAFileIsAnError) {
  fs::path root = fresh_dir("file");
  std::ofstream(root / "f") << "x";
  try {
    kiln::core::AtomicDirectory out(root / "f");
    FAIL() << "expected IoError";
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("exists and is not a directory"), std::string::npos);
  }
}

TEST(ReadFile, MissingAndDirectoryNameThePath) {
  fs::path root = fresh_dir("read");
  try {
    (void)kiln::core::read_file(root / "nope.csv");
    FAIL();
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.csv: file not found"), std::string::npos) << e.what();
  }
  try {
    (void)kiln::core::read_file(root);
    FAIL();
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}
