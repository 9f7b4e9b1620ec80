// load_image_folder: a folder per class (torchvision's ImageFolder layout) read as a labelled data
// set of image paths.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>
#include <set>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"

namespace fs = std::filesystem;

namespace kiln::data {
namespace {

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const LoadOptions& options, DataReport* report) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir + ": not a folder");
  std::vector<fs::path> classes;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory()) classes.push_back(entry.path());
  }
  if (ec) throw IoError(dir + ": cannot list the folder: " + ec.message());
  if (classes.empty()) {
    throw DataError(dir + ": no class folders; an image data set is a folder holding one folder per class "
                    "(DIR/cat/1.png, DIR/dog/2.jpg, ...)");
  }
  std::sort(classes.begin(), classes.end());
  const std::set<std::string> allowed(options.allowed_labels.begin(), options.allowed_labels.end());
  DataReport rep;
  rep.input = dir;
  rep.has_text = false;
  rep.dropped = {{"label_not_allowed", 0}, {"not_an_image", 0}};
  Dataset ds;
  ds.base_dir = dir;
  for (const auto& cls : classes) {
    const std::string label = cls.filename().string();
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(cls, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (ec) throw IoError(cls.string() + ": cannot list the folder: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      ++rep.rows_read;
      if (!has_image_extension(f)) {
        ++rep.dropped["not_an_image"];
        continue;
      }
      ++rep.class_counts_before[label];
      if (!allowed.empty() && !allowed.count(label)) {
        ++rep.dropped["label_not_allowed"];
        continue;
      }
      Example e;
      e.image = ImageRef{fs::relative(f, dir).generic_string(), {}};
      e.label = label;
      ds.push_back(e);
    }
  }
  if (ds.size() == 0) {
    throw DataError(dir + ": no images kept (" + std::to_string(rep.rows_read) + " files read, " +
                    std::to_string(rep.dropped["not_an_image"]) + " without a .png/.jpg/.jpeg extension, " +
                    std::to_string(rep.dropped["label_not_allowed"]) +
                    " in class folders outside --labels); put PNG or JPEG files in DIR/<class>/");
  }
  rep.rows_kept = static_cast<std::int64_t>(ds.size());
  for (const auto& l : ds.labels) ++rep.class_counts_after[l];
  std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = 0;
  for (const auto& [label, n] : rep.class_counts_after) lo = std::min(lo, n), hi = std::max(hi, n);
  rep.imbalance_ratio = static_cast<double>(hi) / static_cast<double>(lo);
  if (report) *report = std::move(rep);
  return ds;
}

}  // namespace kiln::data
