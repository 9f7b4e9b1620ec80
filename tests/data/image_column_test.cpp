// LoadOptions::image_col: image paths read with the labels (and optionally the text), their drop
// reason, the bad-input paths, and to_csv writing them back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"

namespace fs = std::filesystem;
using kiln::data::DataReport;
using kiln::data::Dataset;
using kiln::data::LoadOptions;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_image_column_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p / "sub");
    return p;
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

LoadOptions image_options(const std::string& text_col = "") {
  LoadOptions o;
  o.text_col = text_col;
  o.image_col = "image";
  return o;
}

std::vector<std::string> paths(const Dataset& ds) {
  std::vector<std::string> out;
  for (const auto& im : ds.images) out.push_back(im.path);
  return out;
}

std::string load_error(const std::string& path, const LoadOptions& opts) {
  try {
    DataReport r;
    (void)kiln::data::load_labeled(path, opts, &r);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ImageColumn, CsvWithTextAndImage) {
  const std::string path = write_file("sub/both.csv",
                                      "id,text,image,label\n"
                                      "1,a cat,img/cat.png,cat\n"
                                      "2,a dog,img/dog.png,dog\n"
                                      "3,no picture,,dog\n"
                                      "4,,img/x.png,cat\n");
  DataReport r;
  const Dataset ds = kiln::data::load_labeled(path, image_options("text"), &r);
  EXPECT_EQ(ds.texts, (std::vector<std::string>{"a cat", "a dog"}));
  EXPECT_EQ(paths(ds), (std::vector<std::string>{"img/cat.png", "img/dog.png"}));
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.base_dir, (temp_dir() / "sub").string());
  EXPECT_EQ(r.dropped.at("missing_text"), 1);
  EXPECT_EQ(r.dropped.at("missing_image"), 1);
  EXPECT_TRUE(r.has_text);
}

TEST(ImageColumn, JsonlImageOnly) {
  const std::string path = write_file("images.jsonl",
                                      "{\"image\": \"a.png\", \"label\": \"x\"}\n"
                                      "{\"image\": \"/abs/b.jpg\", \"label\": \"y\"}\n"
                                      "{\"image\": null, \"label\": \"y\"}\n"
                                      "{\"image\": \"  \", \"label\": \"y\"}\n"
                                      "{\"label\": \"x\"}\n");
  DataReport r;
  const Dataset ds = kiln::data::load_labeled(path, image_options(), &r);
  EXPECT_FALSE(ds.has_text());
  EXPECT_EQ(paths(ds), (std::vector<std::string>{"a.png", "/abs/b.jpg"}));
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(ds.base_dir, temp_dir().string());
  EXPECT_EQ(r.rows_read, 5);
  // Image-only: no missing_text reason, and no text length in report.json.
  EXPECT_EQ(r.dropped, (std::map<std::string, std::int64_t>{
                           {"missing_image", 3}, {"missing_label", 0}, {"label_not_allowed", 0}, {"duplicate", 0},
                           {"bad_utf8", 0}}));
  EXPECT_FALSE(r.has_text);
  EXPECT_FALSE(kiln::data::to_json(r).contains("text_length"));
}

TEST(ImageColumn, TextOnlyReportHasNoMissingImageReason) {
  DataReport r;
  (void)kiln::data::load_labeled(write_file("text.csv", "text,label\na,x\n"), {}, &r);
  EXPECT_EQ(r.dropped.count("missing_image"), 0u);
  EXPECT_EQ(r.dropped.size(), 5u);
}

TEST(ImageColumn, DedupeComparesTextAndImage) {
  LoadOptions o = image_options("text");
  o.dedupe = true;
  DataReport r;
  const Dataset ds = kiln::data::load_labeled(
      write_file("dupes.csv", "text,image,label\nt,a.png,x\nt,b.png,x\nt,a.png,y\nu,a.png,x\n"), o, &r);
  EXPECT_EQ(paths(ds), (std::vector<std::string>{"a.png", "b.png", "a.png"}));
  EXPECT_EQ(r.dropped.at("duplicate"), 1);
}

TEST(ImageColumn, EveryImageMissingNamesTheColumn) {
  const std::string msg = load_error(write_file("empty_images.csv", "image,label\n,x\n ,y\n"), image_options());
  EXPECT_NE(msg.find("every row was dropped (2 read: missing_image 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 'image' is empty in 2 rows (is it the image column?)"), std::string::npos) << msg;
}

TEST(ImageColumn, AbsentCsvColumnNamesItAndTheColumnsFound) {
  const std::string msg = load_error(write_file("no_image.csv", "text,label\na,x\n"), image_options("text"));
  EXPECT_NE(msg.find("no_image.csv:1: column 'image' not found in the header; columns found: 'text', 'label'"),
            std::string::npos)
      << msg;
}

TEST(ImageColumn, AbsentJsonKeyNamesItAndTheKeysFound) {
  const std::string msg = load_error(write_file("no_image.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n"),
                                     image_options("text"));
  EXPECT_NE(msg.find("no object has the key 'image' (read 1 objects); keys found: 'text', 'label'"),
            std::string::npos)
      << msg;
}

TEST(ImageColumn, ColumnNamesMustDifferAndOneInputIsNeeded) {
  LoadOptions o = image_options();
  o.image_col = "label";
  EXPECT_EQ(load_error(write_file("x.csv", "label\nx\n"), o),
            "image_col and label_col are both 'label'; name two different columns");
  o = image_options("image");
  EXPECT_EQ(load_error(write_file("x.csv", "image,label\nx,y\n"), o),
            "image_col and text_col are both 'image'; name two different columns");
  o = LoadOptions{};
  o.text_col = "";
  EXPECT_EQ(load_error(write_file("x.csv", "label\nx\n"), o),
            "text_col is empty; name the column that holds the text (or set image_col for images)");
}

TEST(ImageColumn, ToCsvWritesTheColumnsTheDataHas) {
  Dataset ds;
  ds.images = {{"a.png", {}}, {"/abs/b,c.png", {}}};
  ds.labels = {"x", "y"};
  EXPECT_EQ(kiln::data::to_csv(ds, {0, 1}), "image,label\na.png,x\n\"/abs/b,c.png\",y\n");
  ds.texts = {"one", "two"};
  EXPECT_EQ(kiln::data::to_csv(ds, {1}), "text,image,label\ntwo,\"/abs/b,c.png\",y\n");
}

TEST(ImageColumn, ToCsvRewritesRelativePathsForTheCsvFolder) {
  Dataset ds;
  ds.base_dir = (temp_dir() / "data").string();
  ds.images = {{"img/a.png", {}}, {"/abs/b.png", {}}};
  ds.labels = {"x", "y"};
  // Same folder: as stored; another folder: relative to it; absolute paths stay.
  EXPECT_EQ(kiln::data::to_csv(ds, {0}, ds.base_dir), "image,label\nimg/a.png,x\n");
  EXPECT_EQ(kiln::data::to_csv(ds, {0, 1}, (temp_dir() / "out" / "splits").string()),
            "image,label\n../../data/img/a.png,x\n/abs/b.png,y\n");
  EXPECT_EQ(kiln::data::to_csv(ds, {0}), "image,label\nimg/a.png,x\n");
}

TEST(ImageColumn, ToCsvRefusesImageBytes) {
  Dataset ds;
  ds.images = {{"", "\x89PNG"}};
  ds.labels = {"x"};
  try {
    (void)kiln::data::to_csv(ds, {0});
    FAIL() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_STREQ(e.what(), "to_csv: row 0 holds its image as bytes, not a path; a CSV holds image paths only: save the "
                           "image to a file first");
  }
}
