#include "kiln/artifact/profile.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/core/utf8.h"
#include "kiln/prep/ensemble.h"

namespace kiln::artifact {

const std::vector<int64_t>& length_bin_edges() {
  static const std::vector<int64_t> edges = {0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  return edges;
}

const std::vector<double>& intensity_bin_edges() {
  static const std::vector<double> edges = {0, 32, 64, 96, 128, 160, 192, 224};
  return edges;
}

const std::vector<double>& image_size_bin_edges() {
  static const std::vector<double> edges = {0, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304};
  return edges;
}

double mean_intensity(const data::Image& image) {
  const data::Image gray = data::to_channels(image, 1);
  double sum = 0;
  for (const std::uint8_t v : gray.pixels) sum += v;
  return gray.pixels.empty() ? 0.0 : sum / static_cast<double>(gray.pixels.size());
}

namespace {

nlohmann::json histogram(const std::vector<double>& values, const std::vector<double>& edges) {
  std::vector<double> shares(edges.size(), 0.0);
  double sum = 0;
  for (const double v : values) {
    const auto it = std::upper_bound(edges.begin(), edges.end(), std::max(v, 0.0));
    shares[static_cast<std::size_t>(std::distance(edges.begin(), it) - 1)] += 1;
    sum += v;
  }
  const double n = std::max<double>(1.0, static_cast<double>(values.size()));
  for (auto& s : shares) s /= n;
  return {{"edges", edges}, {"shares", shares}, {"mean", sum / n}};
}

// Intensity and size of every training image that decodes (in parallel).
void add_image_profile(const data::Dataset& train, nlohmann::json& profile) {
  const std::size_t n = train.images.size();
  std::vector<double> intensity(n, -1), pixels(n, -1);
  core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t) {
    for (std::size_t i = begin; i < end; ++i) {
      const data::ImageRef& ref = train.images[i];
      try {
        const std::string bytes =
            ref.path.empty() ? ref.bytes : data::read_image_file(data::resolve_image_path(train.base_dir, ref.path));
        const data::Image im = data::decode_image(bytes);
        intensity[i] = mean_intensity(im);
        pixels[i] = static_cast<double>(im.width) * im.height;
      } catch (const Error&) {
      }
    }
  });
  std::vector<double> in, px;
  for (std::size_t i = 0; i < n; ++i) {
    if (intensity[i] >= 0) in.push_back(intensity[i]), px.push_back(pixels[i]);
  }
  if (in.empty()) return;
  profile["image_intensity"] = histogram(in, intensity_bin_edges());
  profile["image_size"] = histogram(px, image_size_bin_edges());
}

}  // namespace

nlohmann::json compute_data_profile(const data::Dataset& train, const prep::Preprocessor& featurizer,
                                    const nn::Batch& encoded, int top_k) {
  const auto& texts = train.texts;
  const auto& labels = train.labels;
  const double n = std::max<double>(1.0, static_cast<double>(train.size()));
  std::map<std::string, int64_t> label_counts;
  for (const auto& l : labels) ++label_counts[l];
  nlohmann::json label_dist = nlohmann::json::object();
  for (const auto& [l, c] : label_counts) label_dist[l] = static_cast<double>(c) / n;

  const auto& edges = length_bin_edges();
  std::vector<int64_t> bins(edges.size(), 0);
  double length_sum = 0;
  for (const auto& t : texts) {
    const auto len = static_cast<int64_t>(core::utf8_length(t));
    length_sum += static_cast<double>(len);
    auto it = std::upper_bound(edges.begin(), edges.end(), len);
    ++bins[static_cast<std::size_t>(std::distance(edges.begin(), it) - 1)];
  }
  std::vector<double> shares(bins.size());
  for (std::size_t i = 0; i < bins.size(); ++i) shares[i] = static_cast<double>(bins[i]) / n;

  const nn::InputSpec spec = featurizer.input_spec();
  const std::string bag_name = prep::primary_tensor_name(spec, nn::kBagIndices);  // member 0's in an ensemble
  const nn::TensorSpec* bag = spec.find(bag_name);
  const torch::Tensor indices = encoded.get(bag_name);
  std::vector<int64_t> df(bag && indices.defined() ? static_cast<std::size_t>(bag->vocab_size) : 0, 0);
  const int64_t nnz = indices.defined() ? indices.numel() : 0;
  if (!df.empty()) {
    const auto idx = indices.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t* ip = idx.data_ptr<int64_t>();
    for (int64_t k = 0; k < nnz; ++k) ++df[static_cast<std::size_t>(ip[k])];
  }
  std::vector<int64_t> order(df.size());
  std::iota(order.begin(), order.end(), 0);
  const std::size_t keep = std::min<std::size_t>(static_cast<std::size_t>(std::max(top_k, 0)), order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int64_t a, int64_t b) { return df[a] != df[b] ? df[a] > df[b] : a < b; });
  nlohmann::json top = nlohmann::json::array();
  for (std::size_t i = 0; i < keep && df[static_cast<std::size_t>(order[i])] > 0; ++i) {
    top.push_back({{"feature", featurizer.feature_name(order[i])},
                   {"index", order[i]},
                   {"doc_share", static_cast<double>(df[static_cast<std::size_t>(order[i])]) / n}});
  }
  nlohmann::json profile = {{"n", train.size()}, {"label_distribution", label_dist}};
  if (train.has_text()) profile["text_length"] = {{"edges", edges}, {"shares", shares}, {"mean", length_sum / n}};
  if (!df.empty()) {
    profile["top_features"] = top;
    profile["nnz_per_row_mean"] = static_cast<double>(nnz) / n;
  }
  if (train.has_images()) add_image_profile(train, profile);
  return profile;
}

}  // namespace kiln::artifact
