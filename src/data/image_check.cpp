// check_images: every image of a data set read and decoded once before training, so a bad file is
// reported with its row (or skipped and counted) instead of failing half-way through encoding.
#include <atomic>
#include <numeric>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"

namespace kiln::data {

BadImagePolicy bad_image_policy_from_name(const std::string& name, const std::string& flag) {
  if (name == "error") return BadImagePolicy::kError;
  if (name == "skip") return BadImagePolicy::kSkip;
  throw ConfigError(flag + " must be 'error' or 'skip', got '" + name + "'");
}

std::int64_t check_images(Dataset& ds, const ImageLimits& limits, BadImagePolicy policy, DataReport* report,
                          const std::string& where) {
  if (!ds.has_images()) return 0;
  const std::size_t n = ds.images.size();
  std::vector<std::string> problems(n);
  core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t) {
    for (std::size_t i = begin; i < end; ++i) {
      const ImageRef& ref = ds.images[i];
      try {
        const std::string bytes =
            ref.path.empty() ? ref.bytes : read_image_file(resolve_image_path(ds.base_dir, ref.path), limits);
        (void)decode_image(bytes, limits);
      } catch (const DataError& e) {
        problems[i] = e.what();
      }
    }
  });
  std::vector<std::size_t> keep;
  keep.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (problems[i].empty()) {
      keep.push_back(i);
      continue;
    }
    if (policy == BadImagePolicy::kError) {
      const std::string file = ds.images[i].path.empty() ? std::string("(inline bytes)") : ds.images[i].path;
      throw DataError(where + ": example " + std::to_string(i + 1) + " (label '" + ds.labels[i] + "'), image '" + file +
                      "': " + problems[i] + "; fix or remove the file, or pass --on-bad-image skip to drop such rows");
    }
  }
  const auto dropped = static_cast<std::int64_t>(n - keep.size());
  if (report) {
    report->dropped["bad_image"] += dropped;
    report->rows_kept -= dropped;
  }
  if (dropped > 0) {
    if (keep.empty()) {
      throw DataError(where + ": every one of the " + std::to_string(n) +
                      " images is unreadable (first: " + problems[0] + ")");
    }
    const std::string base = ds.base_dir;
    ds = ds.select(keep);
    ds.base_dir = base;
  }
  return dropped;
}

}  // namespace kiln::data
