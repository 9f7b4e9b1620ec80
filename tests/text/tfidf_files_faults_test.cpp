// Every operation of fit_tfidf_files (kiln tfidf's output) made to fail in turn, for both matrix
// formats and at one and two threads (where the small files are written on another thread while
// the rows are built): the output directory is always the complete old one or the complete new one,
// and the message names the file, the step and the fix (tests/lib/fault_env.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "kiln/core/parallel.h"
#include "kiln/text/tfidf_files.h"
#include "lib/fault_env.h"
#include "lib/scratch_files.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

TEST(TfidfFilesFaults, EveryFailedStepLeavesTheOldOutputOrTheNewOne) {
  const int before = core::threads();
  for (const text::MatrixFormat format : {text::MatrixFormat::kNpz, text::MatrixFormat::kMtx}) {
    for (const int threads : {1, 2}) {
      const std::string what = std::string(text::matrix_file_name(format)) + ", " + std::to_string(threads) + " threads";
      SCOPED_TRACE(what);
      core::set_threads(threads);
      const fs::path root = kiln::testing::fresh_dir("kiln_tfidf_faults", std::to_string(threads));
      std::ofstream(root / "docs.csv") << "text,label\nthe kiln fires clay,a\nglaze the clay,b\nthe wheel turns,a\n";
      const fs::path out = root / "out";
      text::TfidfFilesOptions old_options;  // an earlier output: another format, fewer columns
      old_options.matrix_format = format == text::MatrixFormat::kNpz ? text::MatrixFormat::kMtx : text::MatrixFormat::kNpz;
      old_options.tfidf.max_features = 2;
      text::TfidfFilesOptions options;
      options.matrix_format = format;
      const long n = faults::check_every_failure(
          root,
          [&] {
            fs::remove_all(out);
            (void)text::fit_tfidf_files((root / "docs.csv").string(), out, old_options);
          },
          [&] { (void)text::fit_tfidf_files((root / "docs.csv").string(), out, options); });
      // mkdir; four files each under its own name in the new folder (open, write, fsync, close);
      // fsync of the new folder; the swap; fsync of the parent.
      EXPECT_GE(n, 1 + 4 * 4 + 3);
      std::cout << "fit_tfidf_files (" << what << "): " << n << " operations, each failed in turn\n";
      EXPECT_TRUE(fs::exists(out / text::matrix_file_name(format)));
      fs::remove_all(root);
    }
  }
  core::set_threads(before);
}

}  // namespace
