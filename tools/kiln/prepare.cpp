// kiln prepare: read, clean, profile and split a labelled text (or image-path) file into
// DIR/{train,val,test}.csv and DIR/report.json, written whole or not at all.
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/data/prepare.h"
#include "output_dir.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

struct PrepareFlags {
  std::string input;
  std::string format = "auto";
  std::string text_col = "text";
  std::string label_col = "label";
  std::string image_col;
  std::vector<std::string> labels;
  double test_size = 0.2;
  double val_size = 0;
  std::uint64_t seed = 42;
  bool dedupe = false;
  std::string on_bad_utf8 = "error";
  std::string rare_classes = "error";
  std::string on_bad_image = "error";
  std::string idx_labels;
  std::string out;
};

void run_prepare(const PrepareFlags& f) {
  data::PrepareOptions options;
  data::LoadOptions& load = options.load;
  load.reader.format = data::parse_format(f.format);
  load.reader.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
  load.text_col = f.text_col;
  load.label_col = f.label_col;
  load.image_col = f.image_col;
  for (const std::string& l : f.labels) {
    if (l.empty()) throw ConfigError("--labels has an empty entry; list labels separated by commas, e.g. --labels pos,neg");
  }
  load.allowed_labels = f.labels;
  load.dedupe = f.dedupe;
  options.split.test_size = f.test_size;
  options.split.val_size = f.val_size;
  options.split.seed = f.seed;
  options.split.rare_classes = data::parse_rare_class_policy(f.rare_classes);
  options.on_bad_image = data::bad_image_policy_from_name(f.on_bad_image, "--on-bad-image");
  options.idx_labels = f.idx_labels;
  if (!f.idx_labels.empty() && (!f.image_col.empty() || f.format != "auto")) {
    throw ConfigError("--idx-labels reads IDX files; --image-col and --format apply to CSV/JSON input: drop them");
  }

  const fs::path out_dir = f.out;
  check_output_dir(out_dir, "report.json", "kiln prepare");
  const data::PreparedData p = data::prepare_data(f.input, options);

  nlohmann::json j = data::to_json(p.report);
  j["options"] = {{"format", f.format},       {"text_col", f.text_col},   {"label_col", f.label_col},
                  {"labels", f.labels},       {"dedupe", f.dedupe},       {"on_bad_utf8", f.on_bad_utf8}};
  if (!f.image_col.empty()) j["options"]["image_col"] = f.image_col;
  if (!f.idx_labels.empty()) j["options"]["idx_labels"] = f.idx_labels;
  if (p.dataset.has_images()) j["options"]["on_bad_image"] = f.on_bad_image;

  data::write_prepared(out_dir, p, j);

  fs::path shown = out_dir;
  if (shown.filename().empty()) shown = shown.parent_path();  // "out/" -> "out", as written
  std::cout << data::summary_table(p, options) << "wrote " << shown.string() << " (train.csv, "
            << (p.has_val ? "val.csv, " : "") << "test.csv, report.json)\n";
}

}  // namespace

void add_prepare(CLI::App& app) {
  auto flags = std::make_shared<PrepareFlags>();
  auto* cmd = app.add_subcommand(
      "prepare",
      "Clean, profile and split a labelled text file (CSV, TSV, JSONL or JSON) into train/test(/val) CSVs and a "
      "report");
  cmd->add_option("--input", flags->input,
                  "Input file ('-' reads standard input), a folder holding one folder of PNG/JPEG images per class, or an "
                  "IDX images file (with --idx-labels)")
      ->required();
  cmd->add_option("--format", flags->format, "Input format: auto (by extension, else by content), csv, tsv, jsonl, json")
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col,
                  "Column (CSV/TSV) or key (JSON) holding the text; '' = no text (needs --image-col)")
      ->capture_default_str();
  cmd->add_option("--label-col", flags->label_col, "Column or key holding the label")->capture_default_str();
  cmd->add_option("--image-col", flags->image_col,
                  "Column or key holding an image path (relative to the input's folder, or absolute); kept in the "
                  "split files, relative to --out (default: none)");
  cmd->add_option("--labels", flags->labels, "Keep only rows with these labels, comma-separated (default: all)")
      ->delimiter(',');
  cmd->add_option("--test-size", flags->test_size, "Test share in (0, 1), or a whole row count >= 1")
      ->capture_default_str();
  cmd->add_option("--val-size", flags->val_size,
                  "Validation share in (0, 1), or a whole row count >= 1; 0 = no validation split")
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Seed for the split; same seed and input give the same split")
      ->capture_default_str();
  cmd->add_flag("--dedupe", flags->dedupe, "Drop rows whose text exactly repeats an earlier row's (default: off)");
  cmd->add_option("--on-bad-utf8", flags->on_bad_utf8,
                  "Invalid UTF-8 in the text or label: error, replace (with U+FFFD) or skip (drop the row)")
      ->capture_default_str();
  cmd->add_option("--rare-classes", flags->rare_classes,
                  "Classes with a single row: error, drop, or train-only (keep them in train)")
      ->capture_default_str();
  cmd->add_option("--on-bad-image", flags->on_bad_image,
                  "An image that is missing, corrupt, truncated or too large: error (naming the row and file) or "
                  "skip (drop the row, counted as bad_image in the report)")
      ->capture_default_str();
  cmd->add_option("--idx-labels", flags->idx_labels,
                  "IDX labels file (MNIST format, e.g. train-labels-idx1-ubyte) for an IDX images file given as "
                  "--input; the images are saved as PNGs under OUT/images/<label>/ (default: none)");
  cmd->add_option("--out", flags->out, "Output directory (replaced whole if it holds an earlier prepare output)")
      ->required();
  cmd->callback([flags]() { run_prepare(*flags); });
}

}  // namespace kiln::cli
