#include "kiln/core/atomic_output.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <iterator>
#include <thread>
#include <fstream>
#include <vector>

#include "kiln/core/env.h"
#include "kiln/core/error.h"
#include "lib/fault_env.h"

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

// ---- the one writer under the Env seam ---------------------------------------------------------

TEST(AtomicFile, StreamedWritesAppearOnlyOnCommit) {
  fs::path root = fresh_dir("stream");
  const std::string big(200000, 'x');  // more than the writer's buffer
  {
    kiln::core::AtomicFile f(root / "sub" / "out.txt");
    f.write("head\n");
    f.write(big);
    f.write("tail\n");
    EXPECT_FALSE(fs::exists(root / "sub" / "out.txt"));
    f.commit();
  }
  EXPECT_EQ(kiln::core::read_file(root / "sub" / "out.txt"), "head\n" + big + "tail\n");
  {
    kiln::core::AtomicFile f(root / "sub" / "out.txt");
    f.write("abandoned");
  }
  EXPECT_EQ(kiln::core::read_file(root / "sub" / "out.txt"), "head\n" + big + "tail\n");
  EXPECT_EQ(kiln::faults::temporaries(kiln::faults::snapshot(root)), "");
}

// `kiln evaluate --json /dev/null` once replaced /dev/null with a regular file (renaming over a
// device replaces the device). A FIFO stands in for the device: it must be written in place.
TEST(AtomicFile, SpecialFilesAreWrittenInPlaceNotReplaced) {
  fs::path root = fresh_dir("fifo");
  const fs::path fifo = root / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  kiln::core::write_file_atomic(fifo, "through the pipe\n");
  reader.join();
  EXPECT_EQ(got, "through the pipe\n");
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(fifo)));
  std::vector<std::string> names;  // (not faults::snapshot: it would read the FIFO and block)
  for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"pipe"});  // no temporary left beside it
}

TEST(AtomicFile, SymlinkToAFileKeepsTheLink) {
  fs::path root = fresh_dir("symlink");
  std::ofstream(root / "real.json") << "old";
  fs::create_symlink("real.json", root / "link.json");
  kiln::core::write_file_atomic(root / "link.json", "new");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(root / "link.json")));
  EXPECT_EQ(kiln::core::read_file(root / "real.json"), "new");
}

TEST(AtomicFile, EveryFailedStepLeavesTheOldFileOrTheNewOne) {
  fs::path root = fresh_dir("file_faults");
  const fs::path file = root / "a" / "b" / "c.txt";
  const long fresh = kiln::faults::check_every_failure(
      root, [&] { fs::remove_all(root / "a"); }, [&] { kiln::core::write_file_atomic(file, "new\n"); });
  EXPECT_EQ(fresh, 2 + 6);  // mkdir a, a/b; open, write, fsync, close, rename, fsync_dir
  const long replace = kiln::faults::check_every_failure(
      root, [&] { kiln::core::write_file_atomic(file, "old contents\n"); },
      [&] { kiln::core::write_file_atomic(file, std::string(300000, 'n')); });
  EXPECT_EQ(replace, 6);  // as above without mkdir; one write: large pieces bypass the buffer
}

TEST(AtomicFile, MessageNamesTheFileTheStepTheReasonAndTheFix) {
  fs::path root = fresh_dir("file_message");
  const std::vector<std::pair<long, std::string>> cases = {
      {0, "creating a temporary file failed: No space left on device; free disk space and retry"},
      {1, "write failed: No space left on device; free disk space and retry"},
      {2, "fsync failed: No space left on device; free disk space and retry"},
      {3, "close failed: No space left on device; free disk space and retry"},
      {4, "rename into place failed: No space left on device; free disk space and retry"},
      {5, "fsync of its directory failed: No space left on device; free disk space and retry"}};
  for (const auto& [op, text] : cases) {
    kiln::faults::FaultEnv env(op, ENOSPC);
    kiln::core::ScopedEnv scope(env);
    try {
      kiln::core::write_file_atomic(root / "kiln.json", "{}\n");
      ADD_FAILURE() << "expected IoError for operation " << op;
    } catch (const kiln::IoError& e) {
      EXPECT_EQ(std::string(e.what()), "writing " + (root / "kiln.json").string() + ": " + text);
    }
  }
  kiln::faults::FaultEnv env(2, EACCES);
  kiln::core::ScopedEnv scope(env);
  try {
    kiln::core::write_file_atomic(root / "kiln.json", "{}\n");
    FAIL();
  } catch (const kiln::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("Permission denied; check that the directory is writable"), std::string::npos)
        << e.what();
  }
}

namespace {
// The POSIX Env on a file system that cannot swap two names in one step.
class NoExchangeEnv final : public kiln::core::Env {
 public:
  kiln::core::Env& p = kiln::core::posix_env();
  int exchanges = 0;
  int open_for_write(const fs::path& path, int* fd) override { return p.open_for_write(path, fd); }
  int write(int fd, const void* d, std::size_t n, std::size_t* w) override { return p.write(fd, d, n, w); }
  int fsync(int fd) override { return p.fsync(fd); }
  int close(int fd) override { return p.close(fd); }
  int rename(const fs::path& a, const fs::path& b) override { return p.rename(a, b); }
  int exchange(const fs::path&, const fs::path&) override {
    ++exchanges;
    return EINVAL;
  }
  int fsync_dir(const fs::path& d) override { return p.fsync_dir(d); }
  int remove(const fs::path& path) override { return p.remove(path); }
  int mkdir(const fs::path& path) override { return p.mkdir(path); }
};
}  // namespace

TEST(AtomicDirectory, ReplacesWithTwoRenamesWhereExchangeIsUnsupported) {
  fs::path root = fresh_dir("no_exchange");
  kiln::core::write_file_atomic(root / "out" / "old.txt", "old");
  NoExchangeEnv env;
  kiln::core::ScopedEnv scope(env);
  {
    kiln::core::AtomicDirectory out(root / "out");
    out.write_file("new.txt", "new");
    out.commit();
  }
  EXPECT_EQ(env.exchanges, 1);
  EXPECT_EQ(kiln::faults::snapshot(root), (kiln::faults::Snapshot{{"out", "<dir>"}, {"out/new.txt", "new"}}));
}

TEST(AtomicDirectory, EveryFailedStepLeavesTheOldDirectoryOrTheNewOne) {
  fs::path root = fresh_dir("dir_faults");
  auto write = [&] {
    kiln::core::AtomicDirectory out(root / "out");
    out.write_file("a.txt", "new a");
    out.write_file("nested/b.txt", "new b");
    out.commit();
  };
  const long fresh = kiln::faults::check_every_failure(root, [&] { fs::remove_all(root / "out"); }, write);
  // mkdir tmp; a.txt under its own name (open, write, fsync, close); mkdir nested + b.txt through a
  // temporary (open, write, fsync, close, rename, fsync_dir); fsync, rename, fsync.
  EXPECT_EQ(fresh, 1 + 4 + 7 + 3);
  const long replace = kiln::faults::check_every_failure(
      root,
      [&] {
        fs::remove_all(root / "out");
        kiln::core::write_file_atomic(root / "out" / "a.txt", "old a");
        kiln::core::write_file_atomic(root / "out" / "c.txt", "old c");
      },
      write);
  EXPECT_GE(replace, fresh);
}

TEST(ScopedEnv, RestoresThePreviousEnv) {
  kiln::faults::FaultEnv outer, inner;
  EXPECT_EQ(&kiln::core::current_env(), &kiln::core::posix_env());
  {
    kiln::core::ScopedEnv a(outer);
    EXPECT_EQ(&kiln::core::current_env(), &outer);
    {
      kiln::core::ScopedEnv b(inner);
      EXPECT_EQ(&kiln::core::current_env(), &inner);
    }
    EXPECT_EQ(&kiln::core::current_env(), &outer);
  }
  EXPECT_EQ(&kiln::core::current_env(), &kiln::core::posix_env());
}

TEST(AtomicDirectory, AFileWrittenTwiceKeepsTheSecondAndAnAbandonedOneLeavesNothing) {
  fs::path root = fresh_dir("twice");
  {
    kiln::core::AtomicDirectory out(root / "out");
    out.write_file("a.txt", "first");
    out.write_file("a.txt", "second");  // replaces the first through a temporary sibling
    {
      kiln::core::AtomicFile partial(out, "b.txt");
      partial.write("never committed");
    }
    out.commit();
  }
  EXPECT_EQ(kiln::faults::snapshot(root), (kiln::faults::Snapshot{{"out", "<dir>"}, {"out/a.txt", "second"}}));
}
