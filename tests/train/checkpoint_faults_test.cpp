// Every operation of save_checkpoint made to fail in turn: each of checkpoint.pt, best.pt and
// checkpoint.json is always its complete old or complete new version (tests/lib/fault_env.h), and
// checkpoint.pt is never newer than best.pt.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint.h"
#include "fused_lbfgs.h"
#include "kiln/train/optimizer.h"
#include "lib/fault_env.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_checkpoint_faults_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A model and an optimizer with state (momentum), at a given "epoch".
struct Training {
  torch::nn::Linear model{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer;
  train::CheckpointState state;

  explicit Training(int epoch) {
    torch::manual_seed(epoch);
    model = torch::nn::Linear(8, 3);
    optimizer = std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    for (int i = 0; i < epoch; ++i) {
      optimizer->zero_grad();
      model->forward(torch::ones({4, 8})).sum().backward();
      optimizer->step();
    }
    state.epoch = epoch;
    state.best_epoch = epoch;
    state.best_val_macro_f1 = 0.5 + 0.1 * epoch;
    state.history.push_back({{"epoch", epoch}});
  }
  void save(const fs::path& run_dir) { train::save_checkpoint(run_dir.string(), *model, *optimizer, state, true); }
};

// checkpoint.pt is written after best.pt: a new checkpoint.pt with an old best.pt would resume
// into an epoch whose best weights are lost.
void best_not_older_than_checkpoint(const faults::Snapshot& before, const faults::Snapshot& after,
                                    const faults::Snapshot& now) {
  auto get = [](const faults::Snapshot& s, const char* k) {
    const auto it = s.find(k);
    return it == s.end() ? std::string("<absent>") : it->second;
  };
  if (get(now, "checkpoint.pt") == get(after, "checkpoint.pt") && get(before, "checkpoint.pt") != get(after, "checkpoint.pt")) {
    EXPECT_EQ(get(now, "best.pt"), get(after, "best.pt")) << "checkpoint.pt is new but best.pt is old";
  }
}

TEST(CheckpointFaults, FirstCheckpointIsWholeOrAbsentFileByFile) {
  const fs::path run_dir = fresh_dir("fresh");
  Training t(1);
  const long n = faults::check_every_failure(
      run_dir,
      [&] {
        fs::remove_all(run_dir);
        fs::create_directories(run_dir);
      },
      [&] { t.save(run_dir); }, faults::Unit::kEachFile, best_not_older_than_checkpoint);
  // best.pt, checkpoint.pt, checkpoint.json: open, write (one or more), fsync, close, rename,
  // fsync_dir each.
  EXPECT_GE(n, 3 * 6);
  std::cout << "save_checkpoint (fresh): " << n << " operations, each failed in turn\n";
  fs::remove_all(run_dir);
}

TEST(CheckpointFaults, ReplacingKeepsEachOldFileWholeUntilItsNewOneIsIn) {
  const fs::path run_dir = fresh_dir("replace");
  Training old_run(1), new_run(2);
  const long n = faults::check_every_failure(
      run_dir,
      [&] {
        fs::remove_all(run_dir);
        fs::create_directories(run_dir);
        old_run.save(run_dir);
      },
      [&] { new_run.save(run_dir); }, faults::Unit::kEachFile, best_not_older_than_checkpoint);
  EXPECT_GE(n, 3 * 6);
  std::cout << "save_checkpoint (replace): " << n << " operations, each failed in turn\n";
  // What survived loads: the new checkpoint after the last (successful) write.
  Training loaded(3);
  EXPECT_EQ(train::load_checkpoint(run_dir.string(), *loaded.model, *loaded.optimizer).epoch, 2);
  fs::remove_all(run_dir);
}

TEST(CheckpointWriter, WritesBehindTheSameFilesAndReportsAFailedWriteAtTheNextCall) {
  const fs::path sync_dir = fresh_dir("writer_sync"), behind_dir = fresh_dir("writer_behind");
  Training t(2);
  t.save(sync_dir);
  {
    train::CheckpointWriter writer;
    writer.save(behind_dir.string(), *t.model, *t.optimizer, t.state, true);
    writer.wait();
  }
  EXPECT_EQ(faults::snapshot(behind_dir), faults::snapshot(sync_dir));

  // The fsync of checkpoint.pt (best.pt's open, write, fsync, close, rename, fsync_dir; then
  // checkpoint.pt's open, write, fsync) fails behind training: wait() throws it, naming the file.
  const fs::path failing_dir = fresh_dir("writer_fails");
  faults::FaultEnv env(8, ENOSPC);
  core::ScopedEnv scope(env);
  train::CheckpointWriter writer;
  writer.save(failing_dir.string(), *t.model, *t.optimizer, t.state, true);
  try {
    writer.wait();
    ADD_FAILURE() << "expected the failed write to surface; operations:\n" << env.log();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), "writing " + (failing_dir / "checkpoint.pt").string() +
                                         ": fsync failed: No space left on device; free disk space and retry");
  }
  writer.wait();  // reported once
  // The next checkpoint writes behind as before (FaultEnv fails one operation only).
  writer.save(failing_dir.string(), *t.model, *t.optimizer, t.state, true);
  writer.wait();
  EXPECT_EQ(train::load_checkpoint(failing_dir.string(), *t.model, *t.optimizer).epoch, 2);
  for (const auto& d : {sync_dir, behind_dir, failing_dir}) fs::remove_all(d);
}

// Kiln's AdamW (an embedding table with a sparse gradient beside dense layers): the checkpoint
// written behind has the bytes of one written at once at the moment of save(), even though the
// model and the optimizer's moments change while it is serialized and written.
TEST(CheckpointWriter, WritesTheMomentOfSaveForAdamWWhileTrainingGoesOn) {
  const fs::path sync_dir = fresh_dir("adamw_sync"), behind_dir = fresh_dir("adamw_behind");
  torch::manual_seed(7);
  torch::nn::Sequential model(torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(50, 8).sparse(true)),
                              torch::nn::Linear(8, 3));
  train::OptimizerOptions o;
  auto optimizer = train::make_optimizer(model->parameters(), o);
  auto step = [&] {
    optimizer->zero_grad();
    model->forward(torch::randint(0, 50, {4, 5}, torch::kInt64)).pow(2).sum().backward();
    optimizer->step();
  };
  for (int i = 0; i < 3; ++i) step();
  train::CheckpointState state;
  state.epoch = 3;
  train::save_checkpoint(sync_dir.string(), *model, *optimizer, state, true);
  train::CheckpointWriter writer;
  writer.save(behind_dir.string(), *model, *optimizer, state, true);
  for (int i = 0; i < 3; ++i) step();  // training goes on while the checkpoint is written
  writer.wait();
  EXPECT_EQ(faults::snapshot(behind_dir), faults::snapshot(sync_dir));
  // A second checkpoint reuses the copies' buffers and is again of its own moment.
  train::save_checkpoint(sync_dir.string(), *model, *optimizer, state, false);
  writer.save(behind_dir.string(), *model, *optimizer, state, false);
  step();
  writer.wait();
  EXPECT_EQ(faults::snapshot(behind_dir), faults::snapshot(sync_dir));
  for (const auto& d : {sync_dir, behind_dir}) fs::remove_all(d);
}

// The fused L-BFGS (the logreg preset's solver): its history is copied at save() and serialized
// behind; the files are those written at once at that moment, with history entries added and
// dropped (history_size 3, 5 iterations a step) while they are written.
TEST(CheckpointWriter, WritesTheMomentOfSaveForLbfgsWhileTrainingGoesOn) {
  const fs::path sync_dir = fresh_dir("lbfgs_sync"), behind_dir = fresh_dir("lbfgs_behind");
  torch::manual_seed(11);
  torch::nn::Linear model(6, 3);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  const torch::Tensor x = torch::randn({20, 6}), y = torch::randint(0, 3, {20}, torch::kInt64);
  const auto options =
      torch::optim::LBFGSOptions(1.0).max_iter(5).history_size(3).tolerance_grad(0).tolerance_change(0).line_search_fn(
          "strong_wolfe");
  train::FusedLbfgs optimizer(model->parameters(), options);
  auto step = [&] {
    optimizer.step([&] {
      torch::AutoGradMode enable_grad(true);
      torch::Tensor w = model->weight.detach().clone().requires_grad_(true);
      torch::Tensor b = model->bias.detach().clone().requires_grad_(true);
      torch::Tensor loss = torch::cross_entropy_loss(torch::nn::functional::linear(x, w, b), y) + 0.01 * w.pow(2).sum();
      loss.backward();
      model->weight.mutable_grad() = w.grad();
      model->bias.mutable_grad() = b.grad();
      return loss.detach();
    });
  };
  step();
  step();
  ASSERT_EQ(static_cast<const torch::optim::LBFGSParamState&>(*optimizer.state().begin()->second).old_dirs().size(), 3u)
      << "the history is full, so later steps drop entries while the checkpoint is written";
  train::CheckpointState state;
  state.epoch = 2;
  train::save_checkpoint(sync_dir.string(), *model, optimizer, state, true);
  train::CheckpointWriter writer;
  writer.save(behind_dir.string(), *model, optimizer, state, true);
  step();  // training goes on while the checkpoint is written
  writer.wait();
  EXPECT_EQ(faults::snapshot(behind_dir), faults::snapshot(sync_dir));
  // A second checkpoint reuses the copies' buffers and is again of its own moment.
  state.epoch = 3;
  train::save_checkpoint(sync_dir.string(), *model, optimizer, state, false);
  writer.save(behind_dir.string(), *model, optimizer, state, false);
  step();
  writer.wait();
  EXPECT_EQ(faults::snapshot(behind_dir), faults::snapshot(sync_dir));
  // And it loads back.
  torch::nn::Linear other(6, 3);
  for (auto& p : other->parameters()) p.set_requires_grad(false);
  train::FusedLbfgs loaded(other->parameters(), options);
  EXPECT_EQ(train::load_checkpoint(behind_dir.string(), *other, loaded).epoch, 3);
  for (const auto& d : {sync_dir, behind_dir}) fs::remove_all(d);
}

}  // namespace
