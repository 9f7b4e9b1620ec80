// Image decoding: PNG and JPEG round trips in every channel layout, the channel policy (alpha over
// white, BT.601 luma, gray replicated), limits, and every bad-input path with its message; then
// check_images on a data set (error naming the row and file, or skip counted in the report).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "kiln/data/prepare.h"

namespace fs = std::filesystem;
using kiln::data::Image;

namespace {

Image make_image(int w, int h, int c) {
  Image im;
  im.width = w, im.height = h, im.channels = c;
  im.pixels.resize(static_cast<std::size_t>(w) * h * c);
  for (std::size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
  return im;
}

std::string decode_error(const std::string& bytes, const kiln::data::ImageLimits& limits = {}) {
  try {
    (void)kiln::data::decode_image(bytes, limits);
  } catch (const kiln::DataError& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_image_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

void write(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

}  // namespace

TEST(ImageDecode, PngRoundTripsEveryLayout) {
  for (int c = 1; c <= 4; ++c) {
    const Image im = make_image(7, 5, c);
    const std::string png = kiln::data::encode_png(im);
    EXPECT_EQ(kiln::data::image_format(png), "png");
    const Image back = kiln::data::decode_image(png);
    EXPECT_EQ(back.width, 7);
    EXPECT_EQ(back.height, 5);
    EXPECT_EQ(back.channels, c);
    EXPECT_EQ(back.pixels, im.pixels) << "channels " << c;
  }
}

TEST(ImageDecode, JpegDecodesCloseToTheSource) {
  for (int c : {1, 3}) {
    Image im;
    im.width = 16, im.height = 16, im.channels = c;
    im.pixels.assign(16 * 16 * c, 0);
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        for (int k = 0; k < c; ++k) im.pixels[(y * 16 + x) * c + k] = static_cast<std::uint8_t>(8 * x + 4 * y + 20 * k);
      }
    }
    const std::string jpg = kiln::data::encode_jpeg(im, 95);
    EXPECT_EQ(kiln::data::image_format(jpg), "jpeg");
    const Image back = kiln::data::decode_image(jpg);
    ASSERT_EQ(back.channels, c);
    ASSERT_EQ(back.pixels.size(), im.pixels.size());
    double err = 0;
    for (std::size_t i = 0; i < im.pixels.size(); ++i) err += std::abs(int(back.pixels[i]) - int(im.pixels[i]));
    EXPECT_LT(err / static_cast<double>(im.pixels.size()), 3.0) << "channels " << c;
  }
}

TEST(ImageDecode, ChannelPolicy) {
  Image rgba;
  rgba.width = 2, rgba.height = 1, rgba.channels = 4;
  rgba.pixels = {255, 0, 0, 255, /* transparent black */ 0, 0, 0, 0};
  const Image rgb = kiln::data::to_channels(rgba, 3);
  EXPECT_EQ(rgb.pixels, (std::vector<std::uint8_t>{255, 0, 0, 255, 255, 255}));  // alpha over white
  const Image gray = kiln::data::to_channels(rgba, 1);
  EXPECT_EQ(gray.pixels, (std::vector<std::uint8_t>{76, 255}));  // 0.299 * 255 = 76.2
  Image ga;
  ga.width = 1, ga.height = 1, ga.channels = 2;
  ga.pixels = {100, 128};
  EXPECT_EQ(kiln::data::to_channels(ga, 1).pixels, (std::vector<std::uint8_t>{177}));  // (100·128 + 255·127)/255
  Image g;
  g.width = 1, g.height = 1, g.channels = 1;
  g.pixels = {42};
  EXPECT_EQ(kiln::data::to_channels(g, 3).pixels, (std::vector<std::uint8_t>{42, 42, 42}));
  EXPECT_THROW((void)kiln::data::to_channels(g, 2), kiln::ConfigError);
}

TEST(ImageDecode, BadInputsNameTheProblem) {
  EXPECT_NE(decode_error("").find("image file is empty"), std::string::npos);
  EXPECT_NE(decode_error("GIF89a....").find("not a PNG or JPEG file"), std::string::npos);
  const std::string png = kiln::data::encode_png(make_image(32, 32, 3));
  EXPECT_NE(decode_error(png.substr(0, png.size() / 2)).find("PNG"), std::string::npos);
  EXPECT_NE(decode_error(png.substr(0, 20)).find("corrupt PNG"), std::string::npos);
  std::string flipped = png;
  flipped[png.size() / 2] ^= 0x55;  // IDAT CRC mismatch
  EXPECT_NE(decode_error(flipped).find("PNG"), std::string::npos);
  const std::string jpg = kiln::data::encode_jpeg(make_image(32, 32, 3), 90);
  EXPECT_NE(decode_error(jpg.substr(0, jpg.size() / 2)).find("corrupt or truncated JPEG"), std::string::npos);
  EXPECT_NE(decode_error(jpg.substr(0, 4)).find("JPEG"), std::string::npos);
}

TEST(ImageDecode, LimitsRejectBeforeDecoding) {
  kiln::data::ImageLimits limits;
  limits.max_pixels = 100;
  const std::string png = kiln::data::encode_png(make_image(20, 10, 1));
  EXPECT_NE(decode_error(png, limits).find("PNG image is 20x10 = 200 pixels, more than the limit of 100"),
            std::string::npos);
  const std::string jpg = kiln::data::encode_jpeg(make_image(20, 10, 1), 90);
  EXPECT_NE(decode_error(jpg, limits).find("JPEG image is 20x10 = 200 pixels"), std::string::npos);
  limits = {};
  limits.max_bytes = 10;
  EXPECT_NE(decode_error(png, limits).find("more than the limit of 10"), std::string::npos);
  // A forged header claiming 100000 x 100000 pixels is refused, not allocated.
  std::string huge = png;
  const unsigned char dims[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};
  std::copy(dims, dims + 8, huge.begin() + 16);
  EXPECT_NE(decode_error(huge).find("PNG"), std::string::npos);
}

TEST(ImageDecode, ReadImageFileErrors) {
  try {
    (void)kiln::data::read_image_file((temp_dir() / "missing.png").string());
    FAIL() << "no error";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png' does not exist"), std::string::npos);
  }
  try {
    (void)kiln::data::read_image_file(temp_dir().string());
    FAIL() << "no error";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("is not a regular file"), std::string::npos);
  }
  EXPECT_EQ(kiln::data::resolve_image_path("base", "a/b.png"), (fs::path("base") / "a/b.png").string());
  EXPECT_EQ(kiln::data::resolve_image_path("base", "/abs.png"), "/abs.png");
}

TEST(CheckImages, ErrorNamesRowAndFileOrSkipCounts) {
  const fs::path dir = temp_dir() / "set";
  fs::create_directories(dir);
  write(dir / "good.png", kiln::data::encode_png(make_image(4, 4, 1)));
  write(dir / "bad.png", "not an image at all");
  kiln::data::Dataset ds;
  ds.base_dir = dir.string();
  for (const char* p : {"good.png", "bad.png", "gone.png", "good.png"}) {
    kiln::data::Example e;
    e.image = kiln::data::ImageRef{p, {}};
    e.label = std::string(p) == "good.png" ? "a" : "b";
    ds.push_back(e);
  }
  kiln::data::Dataset copy = ds;
  try {
    (void)kiln::data::check_images(copy, {}, kiln::data::BadImagePolicy::kError, nullptr, "train.csv");
    FAIL() << "no error";
  } catch (const kiln::DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("train.csv: example 2 (label 'b'), image 'bad.png': not a PNG or JPEG"), std::string::npos) << m;
    EXPECT_NE(m.find("--on-bad-image skip"), std::string::npos) << m;
  }
  kiln::data::DataReport report;
  report.rows_kept = 4;
  EXPECT_EQ(kiln::data::check_images(ds, {}, kiln::data::BadImagePolicy::kSkip, &report, "train.csv"), 2);
  EXPECT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(ds.base_dir, dir.string());
  EXPECT_EQ(report.dropped.at("bad_image"), 2);
  EXPECT_EQ(report.rows_kept, 2);
  EXPECT_EQ(kiln::data::bad_image_policy_from_name("skip", "--on-bad-image"), kiln::data::BadImagePolicy::kSkip);
  try {
    (void)kiln::data::bad_image_policy_from_name("ignore", "--on-bad-image");
    FAIL() << "no error";
  } catch (const kiln::ConfigError& e) {
    EXPECT_STREQ(e.what(), "--on-bad-image must be 'error' or 'skip', got 'ignore'");
  }
}

TEST(ImageFolder, ClassFoldersBecomeLabelsAndPathsResolveFromTheSplitFiles) {
  const fs::path dir = temp_dir() / "folder";
  fs::create_directories(dir / "cat");
  fs::create_directories(dir / "dog" / "more");
  for (int i = 0; i < 4; ++i) {
    write(dir / "cat" / ("c" + std::to_string(i) + ".png"), kiln::data::encode_png(make_image(3, 3, 1)));
    write(dir / "dog" / "more" / ("d" + std::to_string(i) + ".jpg"), kiln::data::encode_jpeg(make_image(3, 3, 3)));
  }
  write(dir / "cat" / "notes.txt", "not an image");
  kiln::data::DataReport report;
  const auto ds = kiln::data::load_labeled(dir.string(), {}, &report);
  ASSERT_EQ(ds.size(), 8u);
  EXPECT_FALSE(ds.has_text());
  EXPECT_EQ(ds.images[0].path, "cat/c0.png");
  EXPECT_EQ(ds.images[4].path, "dog/more/d0.jpg");
  EXPECT_EQ(ds.labels[4], "dog");
  EXPECT_EQ(report.dropped.at("not_an_image"), 1);
  EXPECT_EQ(report.rows_kept, 8);
  // prepare: split files elsewhere; their image paths resolve from the split file's folder.
  kiln::data::PrepareOptions po;
  po.split.test_size = 0.5;
  const auto prepared = kiln::data::prepare_data(dir.string(), po);
  const fs::path out = temp_dir() / "prepared";
  kiln::data::write_prepared(out, prepared, nlohmann::json::object());
  kiln::data::LoadOptions lo;
  lo.text_col = "";
  lo.image_col = "image";
  const auto train = kiln::data::load_labeled((out / "train.csv").string(), lo, nullptr);
  ASSERT_EQ(train.size(), 4u);
  for (const auto& im : train.images) {
    EXPECT_TRUE(fs::exists(kiln::data::resolve_image_path(train.base_dir, im.path))) << im.path;
  }
  kiln::data::Dataset checked = train;
  EXPECT_EQ(kiln::data::check_images(checked, {}, kiln::data::BadImagePolicy::kError, nullptr, "train.csv"), 0);
  // Errors: an empty folder, a folder of files only.
  const fs::path empty = temp_dir() / "empty";
  fs::create_directories(empty);
  try {
    (void)kiln::data::load_labeled(empty.string(), {}, nullptr);
    FAIL();
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no class folders"), std::string::npos);
  }
  fs::create_directories(empty / "x");
  write(empty / "x" / "a.gif", "GIF89a");
  try {
    (void)kiln::data::load_labeled(empty.string(), {}, nullptr);
    FAIL();
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no images kept (1 files read, 1 without a .png/.jpg/.jpeg extension"),
              std::string::npos) << e.what();
  }
}
