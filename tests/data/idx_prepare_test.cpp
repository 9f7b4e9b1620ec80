// IDX input end to end through prepare_data / write_prepared (images saved as PNG files beside the
// split CSVs), and the icon-theme collector of `kiln data fetch icons`, on small files the test writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "image_sets.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"
#include "kiln/data/prepare.h"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_idx_prepare_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  const fs::path p = temp_dir() / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// `n` 4x3 images, image i filled with byte 10 * i, labelled i % 3.
void write_idx(int n, const std::string& images, const std::string& labels) {
  std::string im = be32(0x803) + be32(static_cast<std::uint32_t>(n)) + be32(4) + be32(3);
  std::string lb = be32(0x801) + be32(static_cast<std::uint32_t>(n));
  for (int i = 0; i < n; ++i) {
    im += std::string(12, static_cast<char>(10 * i));
    lb += static_cast<char>(i % 3);
  }
  write_file(images, im);
  write_file(labels, lb);
}

std::string prepare_error(const std::string& path, const kiln::data::PrepareOptions& o) {
  try {
    (void)kiln::data::prepare_data(path, o);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(IdxPrepare, ImagesBecomePngFilesBesideTheSplits) {
  write_idx(15, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
  kiln::data::PrepareOptions o;
  o.idx_labels = (temp_dir() / "train-labels-idx1-ubyte").string();
  o.split.test_size = 0.2;
  o.on_bad_image = kiln::data::BadImagePolicy::kError;
  const auto p = kiln::data::prepare_data((temp_dir() / "train-images-idx3-ubyte").string(), o);
  EXPECT_EQ(p.dataset.size(), 15u);
  EXPECT_EQ(p.report.rows_kept, 15);
  EXPECT_FALSE(p.report.has_text);
  EXPECT_EQ(p.report.class_counts_after.at("2"), 5);
  const fs::path out = temp_dir() / "prepared";
  kiln::data::write_prepared(out, p, nlohmann::json::object());
  // Every split row's image resolves from the CSV's folder and decodes to the IDX pixels.
  std::ifstream train(out / "train.csv");
  std::string line;
  std::getline(train, line);
  EXPECT_EQ(line, "image,label");
  int rows = 0;
  while (std::getline(train, line)) {
    ++rows;
    const auto comma = line.find(',');
    const std::string path = line.substr(0, comma), label = line.substr(comma + 1);
    ASSERT_EQ(path.rfind("images/" + label + "/", 0), 0u) << line;
    const auto image = kiln::data::decode_image(kiln::core::read_file(out / path));
    EXPECT_EQ(image.width, 3);
    EXPECT_EQ(image.height, 4);
    const int index = std::stoi(path.substr(path.rfind('/') + 1)) - 1;  // 1-based file names
    EXPECT_EQ(image.pixels[0], 10 * index) << line;
    EXPECT_EQ(index % 3, std::stoi(label)) << line;
  }
  EXPECT_EQ(rows, 12);
}

TEST(IdxPrepare, ErrorsNameTheFileAndTheFix) {
  write_idx(4, "a-images", "a-labels");
  write_idx(5, "b-images", "b-labels");
  kiln::data::PrepareOptions o;
  const std::string images = (temp_dir() / "a-images").string();
  EXPECT_EQ(prepare_error(images, o), images + " is an IDX images file (MNIST format); pass its labels file too: "
                                               "--idx-labels FILE (e.g. train-labels-idx1-ubyte)");
  o.idx_labels = (temp_dir() / "b-labels").string();
  EXPECT_EQ(prepare_error(images, o), images + " holds 4 images but " + o.idx_labels +
                                          " holds 5 labels; pass the labels file that belongs to these images "
                                          "(train-images with train-labels, t10k-images with t10k-labels)");
  o.idx_labels = (temp_dir() / "a-labels").string();
  o.load.allowed_labels = {"7"};
  EXPECT_EQ(prepare_error(images, o), images + ": no images kept (4 read, 4 with a label outside --labels); the labels "
                                               "are the digits of " + o.idx_labels);
  o.load.allowed_labels.clear();
  const std::string truncated = write_file("t-images", kiln::core::read_file(images).substr(0, 30));
  EXPECT_EQ(prepare_error(truncated, o), truncated + ": truncated: the header declares 4 images of 4x3 (64 bytes) but "
                                                     "the file has 30 bytes; download it again");
  o.idx_labels = (temp_dir() / "missing-labels").string();
  EXPECT_NE(prepare_error(images, o).find("missing-labels"), std::string::npos);
}

TEST(IconSet, ContextFoldersBecomeLabelsAndNamesTexts) {
  const fs::path root = temp_dir() / "icons64";
  kiln::data::Image im;
  im.width = im.height = 2;
  im.channels = 1;
  im.pixels = {0, 50, 100, 150};
  const std::string png = kiln::data::encode_png(im);
  for (const char* f : {"actions/go-next.png", "actions/edit-copy.png", "actions/readme.txt", "apps/kcalc.png",
                        "apps/k-mail.png", "emblems/emblem-lock.png"})
    write_file((fs::path("icons64") / f).string(), png);
  fs::create_symlink("go-next.png", root / "actions" / "go-forward.png");
  kiln::data::IconStats stats;
  const auto rows = kiln::data::collect_icons(root, 2, &stats);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(*rows[0].text, "edit copy");
  EXPECT_EQ(rows[0].label, "actions");
  EXPECT_EQ(*rows[1].text, "go next");
  EXPECT_EQ(*rows[2].text, "k mail");
  EXPECT_EQ(rows[3].label, "apps");
  EXPECT_EQ(stats.files, 5);
  EXPECT_EQ(stats.symlinks, 1);
  EXPECT_EQ(stats.small_classes.at("emblems"), 1);

  const fs::path csv = temp_dir() / "cache" / "icons.csv";
  kiln::data::write_image_set(csv, "icons", rows);
  EXPECT_EQ(kiln::core::read_file(csv),
            "text,image,label\nedit copy,icons/actions/edit-copy.png,actions\ngo next,icons/actions/go-next.png,actions\n"
            "k mail,icons/apps/k-mail.png,apps\nkcalc,icons/apps/kcalc.png,apps\n");
  EXPECT_EQ(kiln::core::read_file(csv.parent_path() / "icons" / "apps" / "kcalc.png"), png);

  try {
    (void)kiln::data::collect_icons(temp_dir() / "cache" / "icons" / "apps", 1, nullptr);
    FAIL() << "no error";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no icon context folders (actions, apps, ...)"), std::string::npos);
  }
}
