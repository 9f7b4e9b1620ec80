// load_idx: a pair of IDX files (MNIST, Fashion-MNIST) read as a labelled data set whose images are
// held as PNG bytes, until write_prepared saves them beside the split files.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>

#include "image_datasets.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"

namespace kiln::data {

bool is_idx_images_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[4] = {0, 0, 0, 0};
  if (!in.read(reinterpret_cast<char*>(magic), 4)) return false;
  return magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08 && magic[3] == 0x03;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path, const LoadOptions& options,
                 DataReport* report) {
  if (images_path == "-" || labels_path == "-") {
    throw ConfigError("IDX input is read from files, not standard input; pass the images file as --input and the "
                      "labels file as --idx-labels");
  }
  const std::vector<LabeledImage> images =
      convert_idx(core::read_file(images_path), core::read_file(labels_path), images_path, labels_path);
  const std::set<std::string> allowed(options.allowed_labels.begin(), options.allowed_labels.end());
  DataReport rep;
  rep.input = images_path;
  rep.has_text = false;
  rep.dropped = {{"label_not_allowed", 0}};
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < images.size(); ++i) {
    ++rep.rows_read;
    ++rep.class_counts_before[images[i].label];
    if (!allowed.empty() && !allowed.count(images[i].label)) {
      ++rep.dropped["label_not_allowed"];
      continue;
    }
    kept.push_back(i);
  }
  if (kept.empty()) {
    throw DataError(images_path + ": no images kept (" + std::to_string(rep.rows_read) + " read, " +
                    std::to_string(rep.dropped["label_not_allowed"]) +
                    " with a label outside --labels); the labels are the digits of " + labels_path);
  }
  Dataset ds;
  ds.images.resize(kept.size());
  ds.labels.resize(kept.size());
  core::parallel_chunks(kept.size(), [&](std::size_t begin, std::size_t end, std::size_t) {
    for (std::size_t k = begin; k < end; ++k) {
      ds.images[k].bytes = encode_png(images[kept[k]].image);
      ds.labels[k] = images[kept[k]].label;
    }
  });
  rep.rows_kept = static_cast<std::int64_t>(ds.size());
  for (const auto& l : ds.labels) ++rep.class_counts_after[l];
  std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = 0;
  for (const auto& [label, n] : rep.class_counts_after) lo = std::min(lo, n), hi = std::max(hi, n);
  rep.imbalance_ratio = static_cast<double>(hi) / static_cast<double>(lo);
  if (report) *report = std::move(rep);
  return ds;
}

}  // namespace kiln::data
