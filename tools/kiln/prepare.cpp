// kiln prepare: read, clean, profile and split a labelled text file into DIR/{train,val,test}.csv and
// DIR/report.json, written whole or not at all.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/data/reader.h"
#include "kiln/data/stratified_split.h"
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
  std::vector<std::string> labels;
  double test_size = 0.2;
  double val_size = 0;
  std::uint64_t seed = 42;
  bool dedupe = false;
  std::string on_bad_utf8 = "error";
  std::string rare_classes = "error";
  std::string out;
};

using Counts = std::map<std::string, std::int64_t>;

Counts count_labels(const data::Dataset& ds, const std::vector<std::size_t>& rows) {
  Counts c;
  for (std::size_t i : rows) ++c[ds.labels[i]];
  return c;
}

nlohmann::json split_json(const data::Dataset& ds, const std::vector<std::size_t>& rows) {
  return {{"rows", rows.size()}, {"class_counts", count_labels(ds, rows)}};
}

// Refuses to replace a path that is not a previous prepare output: --out . or --out ~ must never
// swap away a directory full of other files.
std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad_left(const std::string& s, std::size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }
std::string pad_right(const std::string& s, std::size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

void print_report(const data::DataReport& r, const Counts& train, const Counts& val, const Counts& test,
                  bool has_val, const std::vector<std::string>& rare, const data::SplitOptions& split,
                  const std::string& out_dir) {
  std::ostream& o = std::cout;
  o << "input          " << r.input << "\n";
  o << "rows read      " << r.rows_read << "\n";
  o << "rows kept      " << r.rows_kept << "\n";
  o << "rows dropped\n";
  for (const char* reason : {"missing_text", "missing_label", "label_not_allowed", "duplicate", "bad_utf8"}) {
    auto it = r.dropped.find(reason);
    std::int64_t n = it == r.dropped.end() ? 0 : it->second;
    o << "  " << pad_right(reason, 17) << "  " << pad_left(std::to_string(n), 8) << "\n";
  }
  o << "imbalance      " << fixed(r.imbalance_ratio, 2) << " (largest class / smallest, after cleaning)\n";
  const auto& L = r.text_length;
  o << "text length    min " << L.min << ", p50 " << fixed(L.p50) << ", p90 " << fixed(L.p90) << ", p99 " << fixed(L.p99)
    << ", max " << L.max << ", mean " << fixed(L.mean) << " (code points)\n";
  if (!rare.empty()) {
    o << "rare classes   " << rare.size() << " with one row, "
      << (split.rare_classes == data::RareClassPolicy::kDrop ? "dropped" : "kept in train only") << "\n";
  }
  o << "\n";

  std::set<std::string> classes;
  for (const auto& [c, n] : r.class_counts_before) classes.insert(c);
  for (const auto& [c, n] : r.class_counts_after) classes.insert(c);
  std::size_t cw = 5;
  for (const auto& c : classes) cw = std::max(cw, std::min<std::size_t>(c.size(), 40));
  std::vector<std::string> cols = {"before", "after", "train"};
  if (has_val) cols.push_back("val");
  cols.push_back("test");
  o << pad_right("class", cw);
  for (const auto& c : cols) o << "  " << pad_left(c, 8);
  o << "\n";
  auto get = [](const Counts& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? std::int64_t{0} : it->second;
  };
  std::vector<std::int64_t> totals(cols.size(), 0);
  for (const auto& c : classes) {
    std::string name = c.size() > 40 ? c.substr(0, 37) + "..." : c;
    std::vector<std::int64_t> v = {get(r.class_counts_before, c), get(r.class_counts_after, c), get(train, c)};
    if (has_val) v.push_back(get(val, c));
    v.push_back(get(test, c));
    o << pad_right(name, cw);
    for (std::size_t i = 0; i < v.size(); ++i) {
      o << "  " << pad_left(std::to_string(v[i]), 8);
      totals[i] += v[i];
    }
    o << "\n";
  }
  o << pad_right("total", cw);
  for (std::int64_t t : totals) o << "  " << pad_left(std::to_string(t), 8);
  o << "\n\n";
  o << "wrote " << out_dir << " (train.csv, " << (has_val ? "val.csv, " : "") << "test.csv, report.json)\n";
}

void run_prepare(const PrepareFlags& f) {
  data::LoadOptions load;
  load.reader.format = data::parse_format(f.format);
  load.reader.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
  load.text_col = f.text_col;
  load.label_col = f.label_col;
  for (const std::string& l : f.labels) {
    if (l.empty()) throw ConfigError("--labels has an empty entry; list labels separated by commas, e.g. --labels pos,neg");
  }
  load.allowed_labels = f.labels;
  load.dedupe = f.dedupe;

  data::SplitOptions split;
  split.test_size = f.test_size;
  split.val_size = f.val_size;
  split.seed = f.seed;
  split.rare_classes = data::parse_rare_class_policy(f.rare_classes);

  const fs::path out_dir = f.out;
  check_output_dir(out_dir, "report.json", "kiln prepare");

  data::DataReport report;
  data::Dataset ds = data::load_labeled(f.input, load, &report);
  data::SplitResult parts = data::stratified_split(ds.labels, split);

  const bool has_val = f.val_size > 0;
  nlohmann::json splits = {
      {"seed", f.seed},
      {"test_size", f.test_size},
      {"val_size", f.val_size},
      {"rare_classes_policy", f.rare_classes},
      {"rare_classes", parts.rare_classes},
      {"train", split_json(ds, parts.train)},
      {"test", split_json(ds, parts.test)},
  };
  if (has_val) splits["val"] = split_json(ds, parts.val);
  if (!parts.dropped.empty()) splits["dropped"] = split_json(ds, parts.dropped);
  report.splits = splits;

  nlohmann::json j = data::to_json(report);
  j["options"] = {{"format", f.format},       {"text_col", f.text_col},   {"label_col", f.label_col},
                  {"labels", f.labels},       {"dedupe", f.dedupe},       {"on_bad_utf8", f.on_bad_utf8}};

  core::AtomicDirectory out(out_dir);
  core::write_file_atomic(out.path() / "train.csv", data::to_csv(ds, parts.train));
  core::write_file_atomic(out.path() / "test.csv", data::to_csv(ds, parts.test));
  if (has_val) core::write_file_atomic(out.path() / "val.csv", data::to_csv(ds, parts.val));
  core::write_file_atomic(out.path() / "report.json", j.dump(2) + "\n");
  out.commit();

  print_report(report, count_labels(ds, parts.train), count_labels(ds, parts.val), count_labels(ds, parts.test),
               has_val, parts.rare_classes, split, out.target().string());
}

}  // namespace

void add_prepare(CLI::App& app) {
  auto flags = std::make_shared<PrepareFlags>();
  auto* cmd = app.add_subcommand(
      "prepare",
      "Clean, profile and split a labelled text file (CSV, TSV, JSONL or JSON) into train/test(/val) CSVs and a "
      "report");
  cmd->add_option("--input", flags->input, "Input file; '-' reads standard input")->required();
  cmd->add_option("--format", flags->format, "Input format: auto (by extension, else by content), csv, tsv, jsonl, json")
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col, "Column (CSV/TSV) or key (JSON) holding the text")
      ->capture_default_str();
  cmd->add_option("--label-col", flags->label_col, "Column or key holding the label")->capture_default_str();
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
  cmd->add_option("--out", flags->out, "Output directory (replaced whole if it holds an earlier prepare output)")
      ->required();
  cmd->callback([flags]() { run_prepare(*flags); });
}

}  // namespace kiln::cli
