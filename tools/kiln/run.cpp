#include <filesystem>
#include <iostream>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/dataset.h"
#include "kiln/data/datasets.h"
#include "kiln/data/stratified_split.h"
#include "train_common.h"
#include "train_flags.h"
#include "verbs.h"

namespace kiln::cli {

void add_run(CLI::App& app) {
  struct Flags {
    TrainFlags train;
    std::string dataset, out, cache_dir;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("run", ml_verb_description("run"));
  cmd->add_option("--dataset", f->dataset, "Dataset name (kiln data list); default: the config's, else spamassassin");
  cmd->add_option("--out", f->out, "Run directory (default: runs/<dataset>)");
  cmd->add_option("--cache-dir", f->cache_dir, "Dataset cache (default: ~/.cache/kiln/datasets)");
  f->train.add_to(*cmd);
  cmd->callback([f]() {
    auto config = f->train.resolve();
    if (!f->dataset.empty()) config.data.dataset = f->dataset;
    const std::string out = f->out.empty() ? "runs/" + config.data.dataset : f->out;

    data::FetchOptions fo;
    fo.dir = f->cache_dir;
    core::info("fetching " + config.data.dataset);
    const std::string csv = data::fetch_dataset(config.data.dataset, fo);

    data::LoadOptions lo;
    lo.text_col = config.data.text_col;
    lo.label_col = config.data.label_col;
    lo.allowed_labels = config.data.labels;
    lo.dedupe = config.data.dedupe;
    lo.reader.on_bad_utf8 = data::BadUtf8Policy::kReplace;
    data::DataReport report;
    auto ds = data::load_labeled(csv, lo, &report);

    data::SplitOptions so;
    so.test_size = config.data.test_size;
    so.val_size = config.data.val_size;
    so.seed = config.data.seed;
    so.rare_classes = data::RareClassPolicy::kTrainOnly;
    auto split = data::stratified_split(ds.labels, so);
    auto subset = [&](const std::vector<std::size_t>& idx) {
      data::Dataset d;
      for (auto i : idx) {
        d.texts.push_back(ds.texts[i]);
        d.labels.push_back(ds.labels[i]);
      }
      return d;
    };
    auto train_ds = subset(split.train), val_ds = subset(split.val), test_ds = subset(split.test);
    core::info(config.data.dataset + ": " + std::to_string(ds.size()) + " rows, " +
               std::to_string(report.class_counts_after.size()) + " classes; train " + std::to_string(train_ds.size()) +
               ", validation " + std::to_string(val_ds.size()) + ", test " + std::to_string(test_ds.size()));
    (void)train_and_save(config, train_ds, val_ds.size() ? &val_ds : nullptr, test_ds.size() ? &test_ds : nullptr,
                         out, false);
  });
}

}  // namespace kiln::cli
