#include <filesystem>
#include <iostream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/datasets.h"
#include "kiln/data/prepare.h"
#include "dist_flags.h"
#include "train_common.h"
#include "train_flags.h"
#include "verbs.h"

namespace kiln::cli {

void add_run(CLI::App& app) {
  struct Flags {
    TrainFlags train;
    DistFlags dist;
    std::string dataset, out, cache_dir;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("run", ml_verb_description("run"));
  cmd->add_option("--dataset", f->dataset, "Dataset name (kiln data list); default: the config's, else spamassassin");
  cmd->add_option("--out", f->out, "Run directory (default: runs/<dataset>)");
  cmd->add_option("--cache-dir", f->cache_dir, "Dataset cache (default: ~/.cache/kiln/datasets)");
  f->train.add_to(*cmd);
  f->dist.add_to(*cmd);
  cmd->callback([f]() {
    const DistPlan plan = f->dist.resolve();
    auto config = f->train.resolve();
    const auto selection = f->train.selection();
    if (selection && plan.parallel()) {
      throw ConfigError("data-parallel training (--nproc/WORLD_SIZE " + std::to_string(plan.options.world_size) +
                        ") trains one model, but without --model or --config kiln run selects among several, which "
                        "runs in one process; add --model (e.g. --model embedbag) or --config");
    }
    if (plan.parallel()) check_data_parallel(config.trainer, plan);
    if (!f->dataset.empty()) config.data.dataset = f->dataset;
    const std::string out = f->out.empty() ? "runs/" + config.data.dataset : f->out;

    data::FetchOptions fo;
    fo.dir = f->cache_dir;
    core::info("fetching " + config.data.dataset);
    const std::string csv = data::fetch_dataset(config.data.dataset, fo);
    if (plan.role == DistPlan::Role::kLauncher) {  // fetched once here; the workers find it cached
      launch_workers(plan);
      return;
    }
    std::unique_ptr<train::DataParallel> dp;
    if (plan.role == DistPlan::Role::kWorker) dp = join_as_worker(plan);
    const bool rank0 = !dp || dp->rank() == 0;
    run_as_rank(dp.get(), [&] {

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
    if (rank0) {
      std::filesystem::create_directories(out);
      core::write_file_atomic(std::filesystem::path(out) / "data_report.json", data::to_json(report).dump(2) + "\n");
    }
    const data::Dataset* val = val_ds.size() ? &val_ds : nullptr;
    const data::Dataset* test = test_ds.size() ? &test_ds : nullptr;
    if (selection) {
      (void)select_and_save(*selection, config.data, train_ds, val, test, out);
    } else {
      (void)train_and_save(config, train_ds, val, test, out, false, dp.get());
    }
    });
  });
}

}  // namespace kiln::cli
