// The "image" preprocessor: derived size and channels, fitted normalization, resize goldens from
// python3-torch, state round trip, augmentation (on for training, identity when its ranges are
// empty), and every bad option or image with its message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "image_features.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"
#include "kiln/prep/preprocessor.h"

namespace {

namespace fs = std::filesystem;
using kiln::prep::make_preprocessor;
using nlohmann::json;

kiln::data::Image pattern(int w, int h, int c, int seed = 0) {
  kiln::data::Image im;
  im.width = w, im.height = h, im.channels = c;
  im.pixels.resize(static_cast<std::size_t>(w) * h * c);
  for (std::size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<std::uint8_t>((i * 37 + 11 + seed * 53) % 256);
  return im;
}

class ImageFeatures : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-image-prep-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write_png(const std::string& name, const kiln::data::Image& im) {
    std::ofstream(dir_ / name, std::ios::binary) << kiln::data::encode_png(im);
    return name;
  }
  kiln::data::Examples examples(const std::vector<std::string>& names) {
    kiln::data::Examples e;
    e.base_dir = dir_.string();
    for (const auto& n : names) e.images.push_back({n, {}});
    return e;
  }
  std::string message_of(const json& spec, const kiln::data::Examples* fit_on = nullptr) {
    try {
      auto p = make_preprocessor(spec);
      if (fit_on) p->fit(*fit_on);
    } catch (const kiln::Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

TEST_F(ImageFeatures, DerivesSizeAndChannelsAndNormalizes) {
  const auto ex = examples({write_png("a.png", pattern(6, 4, 1, 0)), write_png("b.png", pattern(6, 4, 2, 1)),
                            write_png("c.png", pattern(6, 4, 1, 2))});
  auto p = make_preprocessor({{"type", "image"}});
  p->fit(ex);
  const json o = p->options();
  EXPECT_EQ(o["size"], json({4, 6}));
  EXPECT_EQ(o["channels"], 1);  // gray, gray + alpha: no color
  const auto x = p->encode(ex).at(kiln::nn::kPixelValues);
  ASSERT_EQ(x.sizes().vec(), (std::vector<int64_t>{3, 1, 4, 6}));
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(x.to(torch::kFloat64).pow(2).mean().item<double>(), 1.0, 1e-4);  // population std 1
  const auto spec = p->input_spec();
  ASSERT_EQ(spec.tensors.size(), 1u);
  EXPECT_EQ(spec.tensors[0].shape, (std::vector<std::string>{"batch", "1", "4", "6"}));
}

TEST_F(ImageFeatures, MixedSizesDefaultTo64AndColorTo3Channels) {
  const auto ex = examples({write_png("a.png", pattern(6, 4, 3)), write_png("b.png", pattern(5, 5, 1))});
  auto p = make_preprocessor({{"type", "image"}});
  p->fit(ex);
  EXPECT_EQ(p->options()["size"], json({64, 64}));
  EXPECT_EQ(p->options()["channels"], 3);
  EXPECT_EQ(p->encode(ex).at(kiln::nn::kPixelValues).sizes().vec(), (std::vector<int64_t>{2, 3, 64, 64}));
}

TEST_F(ImageFeatures, GivenMeanStdAndStateRoundTrip) {
  const auto ex = examples({write_png("a.png", pattern(3, 3, 3)), write_png("b.png", pattern(3, 3, 3, 1))});
  auto p = make_preprocessor({{"type", "image"}, {"size", 2}, {"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.25, 0.25}}});
  p->fit(ex);
  const auto x = p->encode(ex).at(kiln::nn::kPixelValues);
  auto raw = kiln::prep::resize_image(kiln::prep::image_to_tensor(pattern(3, 3, 3)), 2, 2, "stretch");
  EXPECT_TRUE(torch::allclose(x[0], (raw - 0.5) / 0.25, 1e-6, 1e-6));
  auto loaded = kiln::prep::load_preprocessor(p->spec(), p->state_files());
  EXPECT_TRUE(torch::equal(loaded->encode(ex).at(kiln::nn::kPixelValues), x));
  EXPECT_EQ(loaded->options()["size"], json({2, 2}));
  // Missing and malformed state files.
  try {
    (void)kiln::prep::load_preprocessor(p->spec(), {});
    FAIL();
  } catch (const kiln::ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("image.json is missing"), std::string::npos);
  }
  try {
    (void)kiln::prep::load_preprocessor(p->spec(), {{"state", "{\"mean\": [0.1], \"std\": [1]}"}});
    FAIL();
  } catch (const kiln::ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("has 1 means and 1 stds for 3 channel(s)"), std::string::npos);
  }
}

TEST_F(ImageFeatures, ResizeMatchesTorchGoldens) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/image/resize_golden.json");
  ASSERT_TRUE(in) << "run tests/golden/make_image_golden.py";
  const json g = json::parse(in);
  ASSERT_EQ(g["cases"].size(), 4u);
  for (const auto& c : g["cases"]) {
    const int ch = c["channels"], h = c["height"], w = c["width"];
    // CHW values (k * 37 + 11) % 256 / 255, as the script builds them.
    auto src = (torch::arange(ch * h * w, torch::kInt64) * 37 + 11).remainder(256).to(torch::kFloat32).div(255).view({ch, h, w});
    const auto out = kiln::prep::resize_image(src, c["out_height"], c["out_width"], c["policy"]);
    const auto want = torch::tensor(c["values"].get<std::vector<float>>()).view_as(out);
    EXPECT_TRUE(torch::allclose(out, want, 0, 1e-6)) << c["policy"] << " " << h << "x" << w;
  }
}

TEST_F(ImageFeatures, AugmentationOnForTrainingIdentityWhenRangesAreEmpty) {
  const auto ex = examples({write_png("a.png", pattern(8, 8, 1)), write_png("b.png", pattern(8, 8, 1, 3))});
  auto p = make_preprocessor({{"type", "image"}, {"rotation", 20}, {"hflip", true}});
  p->fit(ex);
  ASSERT_TRUE(p->augments());
  const auto b = p->encode(ex);
  torch::manual_seed(1);
  const auto a1 = p->augment(b).at(kiln::nn::kPixelValues);
  EXPECT_EQ(a1.sizes(), b.at(kiln::nn::kPixelValues).sizes());
  EXPECT_FALSE(torch::allclose(a1, b.at(kiln::nn::kPixelValues)));
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(p->augment(b).at(kiln::nn::kPixelValues), a1));  // seeded: reproducible
  // Encoding (evaluation) never augments.
  EXPECT_TRUE(torch::equal(p->encode(ex).at(kiln::nn::kPixelValues), b.at(kiln::nn::kPixelValues)));
  kiln::prep::AugmentOptions none;
  none.crop_scale_min = none.crop_scale_max = 1.0;
  none.rotation_degrees = 0;
  EXPECT_TRUE(torch::allclose(kiln::prep::augment_pixels(b.at(kiln::nn::kPixelValues), none), b.at(kiln::nn::kPixelValues),
                              1e-5, 1e-5));
  // A horizontal flip alone mirrors every example (the draw is per example: 50 examples, both kinds).
  kiln::prep::AugmentOptions flip = none;
  flip.hflip = true;
  const auto x = b.at(kiln::nn::kPixelValues).repeat({25, 1, 1, 1});
  const auto y = kiln::prep::augment_pixels(x, flip);
  int flipped = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    if (torch::allclose(y[i], x[i].flip({2}), 1e-5, 1e-5)) ++flipped;
    else EXPECT_TRUE(torch::allclose(y[i], x[i], 1e-5, 1e-5));
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 45);
  auto off = make_preprocessor({{"type", "image"}, {"augment", false}});
  EXPECT_FALSE(off->augments());
}

TEST_F(ImageFeatures, BadImageNamesExampleAndFile) {
  write_png("a.png", pattern(4, 4, 1));
  std::ofstream(dir_ / "broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n garbage";
  auto p = make_preprocessor({{"type", "image"}});
  p->fit(examples({"a.png"}));
  try {
    (void)p->encode(examples({"a.png", "broken.png"}));
    FAIL();
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 2, image 'broken.png': corrupt PNG"), std::string::npos) << e.what();
  }
  try {
    (void)p->encode(examples({"nothere.png"}));
    FAIL();
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("example 1, image 'nothere.png': image file '"), std::string::npos) << e.what();
  }
  kiln::data::Examples text;
  text.texts = {"no image here"};
  EXPECT_THROW((void)p->encode(text), kiln::DataError);
}

TEST_F(ImageFeatures, BadOptionsNameTheField) {
  EXPECT_NE(message_of({{"type", "image"}, {"colour", 3}}).find("featurizer.colour is not an option of featurizer type 'image'"),
            std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"size", {0, 4}}}).find("featurizer.size must be [height, width]"), std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"channels", 2}}).find("featurizer.channels must be 1 (gray) or 3"), std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"resize", "pad"}}).find("featurizer.resize must be 'stretch' or 'center_crop'"),
            std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"mean", {0.5}}}).find("must be given together"), std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"mean", {0.5}}, {"std", {0}}}).find("featurizer.std entries must be finite and > 0"),
            std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"crop_scale", {0.9, 0.5}}}).find("featurizer.crop_scale must be [min, max]"),
            std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"rotation", 400}}).find("featurizer.rotation must be in [0, 180]"), std::string::npos);
  EXPECT_NE(message_of({{"type", "image"}, {"max_pixels", 0}}).find("featurizer.max_pixels must be >= 1"), std::string::npos);
}

}  // namespace
