#include <filesystem>
#include <iostream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/datasets.h"
#include "kiln/data/prepare.h"
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

    data::PrepareOptions po;
    po.load.text_col = config.data.text_col;
    po.load.image_col = config.data.image_col;
    po.load.label_col = config.data.label_col;
    po.load.allowed_labels = config.data.labels;
    po.load.dedupe = config.data.dedupe;
    po.load.reader.on_bad_utf8 = data::BadUtf8Policy::kReplace;
    po.split.test_size = config.data.test_size;
    po.split.val_size = config.data.val_size;
    po.split.seed = config.data.seed;
    po.split.rare_classes = data::RareClassPolicy::kTrainOnly;
    const data::PreparedData p = data::prepare_data(csv, po);
    const auto& ds = p.dataset;
    const auto& report = p.report;
    auto train_ds = p.train(), val_ds = p.val(), test_ds = p.test();
    core::info(config.data.dataset + ": " + std::to_string(ds.size()) + " rows, " +
               std::to_string(report.class_counts_after.size()) + " classes; train " + std::to_string(train_ds.size()) +
               ", validation " + std::to_string(val_ds.size()) + ", test " + std::to_string(test_ds.size()));
    // The data report (cleaning, class counts, splits) for `kiln report`, in kiln prepare's format.
    std::filesystem::create_directories(out);
    core::write_file_atomic(std::filesystem::path(out) / "data_report.json", data::to_json(report).dump(2) + "\n");
    const data::Dataset* val = val_ds.size() ? &val_ds : nullptr;
    const data::Dataset* test = test_ds.size() ? &test_ds : nullptr;
    if (auto selection = f->train.selection()) {
      (void)select_and_save(*selection, config.data, train_ds, val, test, out);
    } else {
      (void)train_and_save(config, train_ds, val, test, out, false);
    }
  });
}

}  // namespace kiln::cli
