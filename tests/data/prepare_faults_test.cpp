// Every operation of write_prepared (kiln prepare's output) made to fail in turn: the output
// directory is always the complete old one or the complete new one (tests/lib/fault_env.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/data/prepare.h"
#include "lib/fault_env.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_prepare_faults_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// 30 rows of "a" and 20 of "b", with commas and quotes to quote.
data::PreparedData prepared(const fs::path& dir, std::uint64_t seed, double val_size) {
  std::string csv = "text,label\n";
  for (int i = 0; i < 30; ++i) csv += "\"a, \"\"" + std::to_string(i) + "\"\"\",a\n";
  for (int i = 0; i < 20; ++i) csv += "b" + std::to_string(i) + ",b\n";
  const fs::path input = dir / "input.csv";
  std::ofstream(input, std::ios::binary) << csv;
  data::PrepareOptions o;
  o.split.seed = seed;
  o.split.test_size = 0.2;
  o.split.val_size = val_size;
  data::PreparedData p = data::prepare_data(input.string(), o);
  fs::remove(input);
  return p;
}

TEST(WritePreparedFaults, FreshOutputIsWholeOrAbsent) {
  const fs::path root = fresh_dir("fresh");
  const fs::path out = root / "out";
  const data::PreparedData p = prepared(root, 1, 0.2);
  const nlohmann::json report = data::to_json(p.report);
  const long n = faults::check_every_failure(root, [&] { fs::remove_all(out); },
                                              [&] { data::write_prepared(out, p, report); });
  // mkdir; train, test, val, report, each under its own name in the new folder: open, write, fsync,
  // close; fsync of the new folder, rename, fsync of the parent.
  EXPECT_EQ(n, 1 + 4 * 4 + 3);
  std::cout << "write_prepared (fresh): " << n << " operations, each failed in turn\n";
  EXPECT_TRUE(fs::exists(out / "val.csv"));
  fs::remove_all(root);
}

TEST(WritePreparedFaults, ReplacingKeepsTheOldOutputWholeUntilTheNewOneIsIn) {
  const fs::path root = fresh_dir("replace");
  const fs::path out = root / "out";
  const data::PreparedData old_p = prepared(root, 1, 0);  // no val.csv
  const data::PreparedData new_p = prepared(root, 2, 0.2);
  const long n = faults::check_every_failure(
      root,
      [&] {
        fs::remove_all(out);
        data::write_prepared(out, old_p, data::to_json(old_p.report));
      },
      [&] { data::write_prepared(out, new_p, data::to_json(new_p.report)); });
  // As above, with one step to swap the old directory out (rename exchange, or two renames).
  EXPECT_GE(n, 1 + 4 * 4 + 3);
  std::cout << "write_prepared (replace): " << n << " operations, each failed in turn\n";
  EXPECT_TRUE(fs::exists(out / "val.csv"));
  fs::remove_all(root);
}

TEST(WritePreparedFaults, MessageNamesTheFileTheStepAndTheFix) {
  const fs::path root = fresh_dir("message");
  const fs::path out = root / "out";
  const data::PreparedData p = prepared(root, 1, 0);
  // Operation 4: mkdir, open/write/fsync of train.csv: its fsync.
  faults::FaultEnv env(3, ENOSPC);
  core::ScopedEnv scope(env);
  try {
    data::write_prepared(out, p, data::to_json(p.report));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), "writing " + (out / "train.csv").string() +
                                         ": fsync failed: No space left on device; free disk space and retry")
        << env.log();
  }
  EXPECT_TRUE(fs::is_empty(root));
  fs::remove_all(root);
}

}  // namespace
