#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/train/metrics.h"
#include "kiln/train/trainer.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {

void add_evaluate(CLI::App& app) {
  struct Flags {
    std::string artifact, data, json_out, format = "auto", text_col = "text", label_col = "label";
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("evaluate", ml_verb_description("evaluate"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")->required();
  cmd->add_option("--data", f->data, "Labelled CSV/TSV/JSONL/JSON file")->required();
  cmd->add_option("--json", f->json_out, "Also write the metrics as JSON to this file");
  cmd->add_option("--format", f->format, "Input format (auto|csv|tsv|jsonl|json)")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column")->capture_default_str();
  cmd->add_option("--label-col", f->label_col, "Label column")->capture_default_str();
  cmd->callback([f]() {
    artifact::Predictor predictor(artifact_arg(f->artifact));
    data::LoadOptions lo;
    lo.reader.format = data::parse_format(f->format);
    lo.text_col = f->text_col;
    lo.label_col = f->label_col;
    data::DataReport report;
    auto ds = data::load_labeled(f->data, lo, &report);
    const auto& labels = predictor.labels();
    std::map<std::string, int64_t> id;
    for (std::size_t i = 0; i < labels.size(); ++i) id[labels[i]] = static_cast<int64_t>(i);
    std::vector<int64_t> y;
    std::vector<std::size_t> keep;
    std::map<std::string, int64_t> unknown;
    for (std::size_t i = 0; i < ds.size(); ++i) {
      auto it = id.find(ds.labels[i]);
      if (it == id.end()) {
        ++unknown[ds.labels[i]];
        continue;
      }
      y.push_back(it->second);
      keep.push_back(i);
    }
    if (!unknown.empty()) {
      std::string names;
      for (const auto& [l, c] : unknown) names += (names.empty() ? "" : ", ") + l + " (" + std::to_string(c) + ")";
      std::cerr << "kiln: warning: skipped rows whose label the model does not know: " << names << "\n";
    }
    if (keep.empty()) {
      throw DataError(f->data + ": no row has a label the model knows (" + std::to_string(labels.size()) +
                      " labels, e.g. '" + labels[0] + "'); check --label-col and that the file matches the model");
    }
    std::vector<std::string> texts;
    texts.reserve(keep.size());
    for (auto i : keep) texts.push_back(std::move(ds.texts[i]));
    auto probs = predictor.predict_proba(texts);
    auto metrics = train::compute_metrics_from_proba(y, probs, static_cast<int64_t>(labels.size()));
    std::cout << train::format_metrics_table(metrics, labels);
    if (!f->json_out.empty()) {
      core::write_file_atomic(f->json_out, train::to_json(metrics, labels).dump(2) + "\n");
      std::cout << "metrics written to " << f->json_out << "\n";
    }
  });
}

}  // namespace kiln::cli
