// The "image" preprocessor: PNG/JPEG files (or bytes) → pixel_values float32 [batch, C, H, W],
// decoded (data::decode_image), converted to 1 or 3 channels (data::to_channels: alpha over white,
// BT.601 luma), resized (resize_image), scaled to [0, 1] and normalized per channel with a mean and
// standard deviation fitted on the training images (state file image.json) or given.
// Training augmentation (augment_pixels) runs per step in the trainer, never at evaluation.
//
// Options (featurizer.<name>; after fit, options() holds the derived values, persisted in kiln.json):
//   size        [height, width] (or one integer for a square); null (default) = the training images'
//               own size when they all share one, else [64, 64]
//   channels    1 | 3; null (default) = 1 when every training image is gray (with or without alpha),
//               else 3
//   resize      "stretch" (default) | "center_crop" (see resize_image)
//   mean, std   per-channel lists (e.g. ImageNet's) to use instead of fitting them; null (default) =
//               fitted on the training images after resizing (population std; a constant channel
//               gets std 1)
//   augment     training augmentation on (default true): crop_scale [min, max] (default [0.8, 1]),
//               hflip (default false: digits and text are not mirror-symmetric), rotation (degrees,
//               default 10)
//   max_pixels, max_bytes   limits per image (defaults 40,000,000 and 32 MiB)
#include <cmath>
#include <set>

#include "image_features.h"

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

namespace kiln::prep {

torch::Tensor image_to_tensor(const data::Image& image) {
  auto hwc = torch::from_blob(const_cast<std::uint8_t*>(image.pixels.data()),
                              {image.height, image.width, image.channels}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0f).contiguous();
}

torch::Tensor resize_image(const torch::Tensor& chw, int64_t height, int64_t width, const std::string& policy) {
  namespace F = torch::nn::functional;
  const int64_t h = chw.size(1), w = chw.size(2);
  auto bilinear = [](const torch::Tensor& x, int64_t oh, int64_t ow) {
    if (x.size(1) == oh && x.size(2) == ow) return x;
    return F::interpolate(x.unsqueeze(0), F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{oh, ow})
                                              .mode(torch::kBilinear)
                                              .align_corners(false))
        .squeeze(0);
  };
  if (policy == "stretch") return bilinear(chw, height, width);
  if (policy != "center_crop") throw ConfigError("featurizer.resize must be 'stretch' or 'center_crop', got '" + policy + "'");
  const double scale = std::max(static_cast<double>(height) / h, static_cast<double>(width) / w);
  const int64_t sh = std::max<int64_t>(height, std::llround(h * scale));
  const int64_t sw = std::max<int64_t>(width, std::llround(w * scale));
  auto scaled = bilinear(chw, sh, sw);
  const int64_t top = (sh - height) / 2, left = (sw - width) / 2;
  return scaled.narrow(1, top, height).narrow(2, left, width).contiguous();
}

torch::Tensor augment_pixels(const torch::Tensor& pixels, const AugmentOptions& o) {
  namespace F = torch::nn::functional;
  const int64_t b = pixels.size(0);
  if (b == 0) return pixels;
  const auto r = torch::rand({b, 6}, torch::TensorOptions().dtype(torch::kFloat64));
  auto theta = torch::empty({b, 2, 3}, torch::kFloat32);
  const auto* rp = r.data_ptr<double>();
  auto* tp = theta.data_ptr<float>();
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  constexpr double kPi = 3.14159265358979323846;
  for (int64_t i = 0; i < b; ++i) {
    const double* u = rp + i * 6;
    const double area = o.crop_scale_min + (o.crop_scale_max - o.crop_scale_min) * u[0];
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * u[1]);
    // A window wider or taller than the image keeps its area with the long side clipped (a share
    // of 1 is then the whole image, whatever the ratio).
    double w = std::sqrt(area * ratio), h = std::sqrt(area / ratio);
    if (w > 1.0) w = 1.0, h = area;
    if (h > 1.0) h = 1.0, w = area;
    const double cx = (1.0 - w) * (2.0 * u[2] - 1.0), cy = (1.0 - h) * (2.0 * u[3] - 1.0);
    const double angle = o.rotation_degrees * (2.0 * u[4] - 1.0) * kPi / 180.0;
    const double flip = (o.hflip && u[5] < 0.5) ? -1.0 : 1.0;
    const double c = std::cos(angle), s = std::sin(angle);
    float* t = tp + i * 6;
    t[0] = static_cast<float>(c * w * flip), t[1] = static_cast<float>(-s * h), t[2] = static_cast<float>(cx);
    t[3] = static_cast<float>(s * w * flip), t[4] = static_cast<float>(c * h), t[5] = static_cast<float>(cy);
  }
  theta = theta.to(pixels.device());
  const auto grid = F::affine_grid(theta, pixels.sizes().vec(), /*align_corners=*/false);
  return F::grid_sample(pixels, grid,
                        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

namespace {

using nlohmann::json;

// The fitted mean and std; the artifact stores it as image.json.
constexpr const char* kImageStatsFile = "state";

struct ImageSpec {
  int64_t height = 0, width = 0;  ///< 0 = derive at fit
  int channels = 0;               ///< 0 = derive at fit
  std::string resize = "stretch";
  std::vector<double> mean, std;  ///< empty = fit
  bool augment = true;
  AugmentOptions aug;
  data::ImageLimits limits;
};

template <typename T>
T image_field(const json& spec, const std::string& key, const std::string& want) {
  try {
    return spec.at(key).get<T>();
  } catch (const json::exception&) {
    throw ConfigError("featurizer." + key + " must be " + want + ", got " + spec.at(key).dump());
  }
}

std::vector<double> image_channel_list(const json& spec, const std::string& key) {
  if (!spec.contains(key) || spec.at(key).is_null()) return {};
  auto v = image_field<std::vector<double>>(spec, key, "a list of 1 or 3 numbers (one per channel)");
  if (v.size() != 1 && v.size() != 3) {
    throw ConfigError("featurizer." + key + " must have 1 or 3 entries (one per channel), got " + spec.at(key).dump());
  }
  for (double x : v) {
    if (!std::isfinite(x) || (key == "std" && x <= 0)) {
      throw ConfigError("featurizer." + key + " entries must be finite" + std::string(key == "std" ? " and > 0" : "") +
                        ", got " + spec.at(key).dump());
    }
  }
  return v;
}

ImageSpec parse_image_spec(const json& spec) {
  static const std::set<std::string> kKnown = {"size", "channels", "resize", "mean", "std", "augment",
                                               "crop_scale", "hflip", "rotation", "max_pixels", "max_bytes"};
  if (!spec.is_object()) throw ConfigError("featurizer must be a mapping with a \"type\", got " + spec.dump());
  for (const auto& [k, v] : spec.items()) {
    if (k != "type" && !kKnown.count(k)) {
      std::string list;
      for (const auto& n : kKnown) list += (list.empty() ? "" : ", ") + n;
      throw ConfigError("featurizer." + k + " is not an option of featurizer type 'image'; valid options: " + list);
    }
  }
  ImageSpec s;
  if (spec.contains("size") && !spec.at("size").is_null()) {
    const json& v = spec.at("size");
    std::vector<int64_t> hw;
    if (v.is_number_integer()) hw = {v.get<int64_t>(), v.get<int64_t>()};
    else hw = image_field<std::vector<int64_t>>(spec, "size", "[height, width] or one integer");
    if (hw.size() != 2 || hw[0] < 1 || hw[1] < 1 || hw[0] > 4096 || hw[1] > 4096) {
      throw ConfigError("featurizer.size must be [height, width] with each in [1, 4096], got " + v.dump());
    }
    s.height = hw[0], s.width = hw[1];
  }
  if (spec.contains("channels") && !spec.at("channels").is_null()) {
    s.channels = image_field<int>(spec, "channels", "1 or 3");
    if (s.channels != 1 && s.channels != 3) {
      throw ConfigError("featurizer.channels must be 1 (gray) or 3 (RGB), got " + spec.at("channels").dump());
    }
  }
  if (spec.contains("resize")) s.resize = image_field<std::string>(spec, "resize", "'stretch' or 'center_crop'");
  if (s.resize != "stretch" && s.resize != "center_crop") {
    throw ConfigError("featurizer.resize must be 'stretch' or 'center_crop', got '" + s.resize + "'");
  }
  s.mean = image_channel_list(spec, "mean");
  s.std = image_channel_list(spec, "std");
  if (s.mean.empty() != s.std.empty()) throw ConfigError("featurizer.mean and featurizer.std must be given together");
  if (!s.mean.empty() && s.mean.size() != s.std.size()) {
    throw ConfigError("featurizer.mean and featurizer.std must have the same number of entries");
  }
  if (!s.mean.empty() && s.channels != 0 && static_cast<int>(s.mean.size()) != s.channels) {
    throw ConfigError("featurizer.mean has " + std::to_string(s.mean.size()) + " entries but featurizer.channels is " +
                      std::to_string(s.channels));
  }
  if (spec.contains("augment")) s.augment = image_field<bool>(spec, "augment", "true or false");
  if (spec.contains("crop_scale")) {
    auto v = image_field<std::vector<double>>(spec, "crop_scale", "[min, max] shares of the image area");
    if (v.size() != 2 || !(v[0] > 0) || !(v[0] <= v[1]) || !(v[1] <= 1)) {
      throw ConfigError("featurizer.crop_scale must be [min, max] with 0 < min <= max <= 1, got " +
                        spec.at("crop_scale").dump());
    }
    s.aug.crop_scale_min = v[0], s.aug.crop_scale_max = v[1];
  }
  if (spec.contains("hflip")) s.aug.hflip = image_field<bool>(spec, "hflip", "true or false");
  if (spec.contains("rotation")) {
    s.aug.rotation_degrees = image_field<double>(spec, "rotation", "a number of degrees");
    if (!(s.aug.rotation_degrees >= 0 && s.aug.rotation_degrees <= 180)) {
      throw ConfigError("featurizer.rotation must be in [0, 180] degrees, got " + spec.at("rotation").dump());
    }
  }
  if (spec.contains("max_pixels")) {
    s.limits.max_pixels = image_field<int64_t>(spec, "max_pixels", "an integer");
    if (s.limits.max_pixels < 1) throw ConfigError("featurizer.max_pixels must be >= 1, got " + spec.at("max_pixels").dump());
  }
  if (spec.contains("max_bytes")) {
    s.limits.max_bytes = image_field<int64_t>(spec, "max_bytes", "an integer");
    if (s.limits.max_bytes < 1) throw ConfigError("featurizer.max_bytes must be >= 1, got " + spec.at("max_bytes").dump());
  }
  return s;
}

class ImagePreprocessor final : public Preprocessor {
 public:
  explicit ImagePreprocessor(ImageSpec spec) : spec_(std::move(spec)) {}

  [[nodiscard]] std::string type() const override { return "image"; }
  [[nodiscard]] json options() const override {
    json j = {{"size", spec_.height ? json({spec_.height, spec_.width}) : json(nullptr)},
              {"channels", spec_.channels ? json(spec_.channels) : json(nullptr)},
              {"resize", spec_.resize},
              {"augment", spec_.augment},
              {"crop_scale", {spec_.aug.crop_scale_min, spec_.aug.crop_scale_max}},
              {"hflip", spec_.aug.hflip},
              {"rotation", spec_.aug.rotation_degrees},
              {"max_pixels", spec_.limits.max_pixels},
              {"max_bytes", spec_.limits.max_bytes}};
    j["mean"] = given_stats_ ? json(spec_.mean) : json(nullptr);
    j["std"] = given_stats_ ? json(spec_.std) : json(nullptr);
    return j;
  }

  void fit(const data::Examples& examples) override {
    require_images(examples);
    given_stats_ = !spec_.mean.empty();
    const std::size_t n = examples.images.size();
    // Pass 1: sizes and channels, to derive what was not given.
    std::vector<data::Image> decoded(n);
    core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t) {
      for (std::size_t i = begin; i < end; ++i) decoded[i] = load(examples, i);
    });
    if (spec_.channels == 0) {
      bool color = false;
      for (const auto& im : decoded) color = color || im.channels >= 3;
      spec_.channels = color ? 3 : 1;
      if (given_stats_ && static_cast<int>(spec_.mean.size()) != spec_.channels) spec_.channels = static_cast<int>(spec_.mean.size());
    }
    if (spec_.height == 0) {
      bool same = n > 0;
      for (const auto& im : decoded) same = same && im.width == decoded[0].width && im.height == decoded[0].height;
      spec_.height = same ? decoded[0].height : 64;
      spec_.width = same ? decoded[0].width : 64;
    }
    if (given_stats_) {
      if (static_cast<int>(spec_.mean.size()) != spec_.channels) {
        throw ConfigError("featurizer.mean has " + std::to_string(spec_.mean.size()) + " entries but the images have " +
                          std::to_string(spec_.channels) + " channel(s)");
      }
      return;
    }
    // Pass 2: per-channel mean and population std of the resized [0, 1] pixels.
    const int c = spec_.channels;
    const std::size_t chunks = core::chunk_count(n);
    std::vector<std::vector<double>> sums(chunks, std::vector<double>(2 * c, 0.0));
    core::parallel_chunks(n, [&](std::size_t begin, std::size_t end, std::size_t k) {
      for (std::size_t i = begin; i < end; ++i) {
        const auto t = pixels(decoded[i]).to(torch::kFloat64);
        const auto s1 = t.sum({1, 2}), s2 = t.square().sum({1, 2});
        for (int ch = 0; ch < c; ++ch) {
          sums[k][ch] += s1[ch].item<double>();
          sums[k][c + ch] += s2[ch].item<double>();
        }
        decoded[i] = data::Image();
      }
    });
    const double count = static_cast<double>(n) * spec_.height * spec_.width;
    spec_.mean.assign(c, 0.0);
    spec_.std.assign(c, 1.0);
    for (int ch = 0; ch < c; ++ch) {
      double s1 = 0, s2 = 0;
      for (const auto& part : sums) s1 += part[ch], s2 += part[c + ch];
      const double mean = s1 / count, var = std::max(0.0, s2 / count - mean * mean);
      spec_.mean[ch] = mean;
      spec_.std[ch] = var > 1e-12 ? std::sqrt(var) : 1.0;
    }
  }

  [[nodiscard]] nn::Batch encode(const data::Examples& examples) const override {
    if (spec_.height == 0 || spec_.mean.empty()) throw ConfigError("the image preprocessor is not fitted yet");
    require_images(examples);
    const auto n = static_cast<int64_t>(examples.images.size());
    auto out = torch::empty({n, spec_.channels, spec_.height, spec_.width}, torch::kFloat32);
    core::parallel_chunks(static_cast<std::size_t>(n), [&](std::size_t begin, std::size_t end, std::size_t) {
      for (std::size_t i = begin; i < end; ++i) out[static_cast<int64_t>(i)].copy_(pixels(load(examples, i)));
    });
    const auto mean = torch::tensor(std::vector<float>(spec_.mean.begin(), spec_.mean.end())).view({1, -1, 1, 1});
    const auto std = torch::tensor(std::vector<float>(spec_.std.begin(), spec_.std.end())).view({1, -1, 1, 1});
    out.sub_(mean).div_(std);
    nn::Batch batch(n);
    batch.set(nn::kPixelValues, out);
    return batch;
  }

  [[nodiscard]] bool augments() const override { return spec_.augment; }
  [[nodiscard]] nn::Batch augment(const nn::Batch& batch) const override {
    if (!spec_.augment || !batch.has(nn::kPixelValues)) return batch;
    nn::Batch out = batch;
    torch::NoGradGuard no_grad;
    out.set(nn::kPixelValues, augment_pixels(batch.at(nn::kPixelValues), spec_.aug));
    return out;
  }

  [[nodiscard]] nn::InputSpec input_spec() const override {
    nn::InputSpec spec;
    spec.tensors.push_back({nn::kPixelValues, "float32",
                            {"batch", std::to_string(spec_.channels), std::to_string(spec_.height), std::to_string(spec_.width)},
                            0});
    return spec;
  }

  [[nodiscard]] StateFiles state_files() const override {
    if (spec_.mean.empty()) return {};
    return {{kImageStatsFile, json({{"mean", spec_.mean}, {"std", spec_.std}}).dump(2) + "\n"}};
  }

  void restore(const std::string& stats_text) {
    json j;
    try {
      j = json::parse(stats_text);
      spec_.mean = j.at("mean").get<std::vector<double>>();
      spec_.std = j.at("std").get<std::vector<double>>();
    } catch (const json::exception& e) {
      throw ArtifactError(std::string("the image preprocessor's image.json is malformed: ") + e.what());
    }
    if (spec_.height == 0 || spec_.channels == 0) {
      throw ArtifactError("the image preprocessor's spec lacks size or channels; the artifact is incomplete");
    }
    if (static_cast<int>(spec_.mean.size()) != spec_.channels || spec_.std.size() != spec_.mean.size()) {
      throw ArtifactError("the image preprocessor's image.json has " + std::to_string(spec_.mean.size()) +
                          " means and " + std::to_string(spec_.std.size()) + " stds for " +
                          std::to_string(spec_.channels) + " channel(s)");
    }
    for (double s : spec_.std) {
      if (!(s > 0) || !std::isfinite(s)) throw ArtifactError("the image preprocessor's image.json has a std <= 0");
    }
  }

 private:
  static void require_images(const data::Examples& examples) {
    if (!examples.has_images() && examples.size() > 0) {
      throw DataError("the image preprocessor reads images, but these examples have none; give the data an image "
                      "column (--image-col) or use a text model");
    }
  }

  data::Image load(const data::Examples& examples, std::size_t i) const {
    const data::ImageRef& ref = examples.images[i];
    const std::string name = ref.path.empty() ? std::string("(inline bytes)") : ref.path;
    try {
      const std::string bytes =
          ref.path.empty() ? ref.bytes
                           : data::read_image_file(data::resolve_image_path(examples.base_dir, ref.path), spec_.limits);
      return data::decode_image(bytes, spec_.limits);
    } catch (const DataError& e) {
      throw DataError("example " + std::to_string(i + 1) + ", image '" + name + "': " + e.what() +
                      "; fix or remove the file (training: --on-bad-image skip drops such rows)");
    }
  }

  torch::Tensor pixels(const data::Image& image) const {
    return resize_image(image_to_tensor(data::to_channels(image, spec_.channels)), spec_.height, spec_.width,
                        spec_.resize);
  }

  ImageSpec spec_;
  bool given_stats_ = false;
};

std::unique_ptr<Preprocessor> make_image(const json& spec) { return std::make_unique<ImagePreprocessor>(parse_image_spec(spec)); }

std::unique_ptr<Preprocessor> load_image(const json& spec, const StateFiles& files) {
  const auto it = files.find(kImageStatsFile);
  if (it == files.end()) throw ArtifactError("the image preprocessor's state file image.json is missing");
  json clean = spec;
  clean.erase("mean");
  clean.erase("std");
  auto p = std::make_unique<ImagePreprocessor>(parse_image_spec(clean));
  p->restore(it->second);
  return p;
}

}  // namespace

PreprocessorType image_type() {
  PreprocessorType t;
  t.name = "image";
  t.description = "PNG/JPEG images as pixel_values [batch, channels, height, width]: resized, normalized per channel";
  t.make = make_image;
  t.load = load_image;
  return t;
}

}  // namespace kiln::prep
