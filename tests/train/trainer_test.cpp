#include "kiln/train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "kiln/core/error.h"
#include "kiln/nn/model.h"
#include "nn/nn_test_util.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

// A separable sparse problem: class c's rows mostly use features [c*10, c*10+10).
struct Problem {
  std::vector<int64_t> indptr{0}, indices;
  std::vector<float> values;
  std::vector<int64_t> y;
  int64_t cols = 40;
  train::LabeledBatch rows() const {
    const auto n = static_cast<int64_t>(y.size());
    train::LabeledBatch r;
    r.x = nn::Batch(n);
    r.x.set(nn::kBagIndices, torch::tensor(indices, torch::kInt64));
    r.x.set(nn::kBagOffsets, torch::tensor(std::vector<int64_t>(indptr.begin(), indptr.end() - 1), torch::kInt64));
    r.x.set(nn::kBagWeights, torch::tensor(values, torch::kFloat32));
    r.y = y;
    return r;
  }
};

Problem make_problem(int n, uint64_t seed) {
  Problem p;
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    int64_t c = static_cast<int64_t>(rng() % 4);
    for (int k = 0; k < 5; ++k) {
      bool noise = rng() % 5 == 0;
      int64_t f = noise ? static_cast<int64_t>(rng() % 40) : c * 10 + static_cast<int64_t>(rng() % 10);
      p.indices.push_back(f);
      p.values.push_back(0.2f + static_cast<float>(rng() % 100) / 100.0f);
    }
    p.indptr.push_back(static_cast<int64_t>(p.indices.size()));
    p.y.push_back(c);
  }
  return p;
}

std::shared_ptr<nn::Model> make_mlp(uint64_t seed) {
  torch::manual_seed(seed);
  nn::ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"hidden", {16}}, {"dropout", 0.2}};
  return nn::make_model(spec, nn::bag_spec(40), 4);
}

train::TrainerOptions small_options() {
  train::TrainerOptions o;
  o.epochs = 4;
  o.batch_size = 16;
  o.optimizer.lr = 1e-2;
  o.schedule.warmup_ratio = 0.1;
  o.early_stopping_patience = 0;
  return o;
}

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

}  // namespace

TEST(Trainer, LearnsASeparableProblem) {
  auto train = make_problem(400, 1), val = make_problem(100, 2);
  auto model = make_mlp(7);
  auto tr = train.rows(), va = val.rows();
  auto result = train::train_model(*model, tr, &va, 4, small_options());
  ASSERT_EQ(result.history.size(), 4u);
  EXPECT_GT(result.best_val_macro_f1, 0.9);
  EXPECT_LT(result.history.back().train_loss, result.history.front().train_loss);
}

TEST(Trainer, ResumedRunEndsWithTheSameWeights) {
  auto train = make_problem(300, 3), val = make_problem(80, 4);
  auto tr = train.rows(), va = val.rows();

  auto full_dir = fresh_dir("full");
  auto opts = small_options();
  opts.run_dir = full_dir.string();
  auto full = make_mlp(11);
  auto full_result = train::train_model(*full, tr, &va, 4, opts);

  auto part_dir = fresh_dir("part");
  opts.run_dir = part_dir.string();
  opts.stop_after_epochs = 2;  // interrupted after epoch 2
  auto first = make_mlp(11);
  (void)train::train_model(*first, tr, &va, 4, opts);
  // Something else uses the global RNG in between, as a new process would start fresh.
  torch::manual_seed(999);
  (void)torch::rand({10});
  opts.stop_after_epochs = 0;
  opts.resume = true;
  auto resumed = make_mlp(11);
  auto resumed_result = train::train_model(*resumed, tr, &va, 4, opts);
  EXPECT_TRUE(resumed_result.resumed);
  ASSERT_EQ(resumed_result.history.size(), full_result.history.size());
  EXPECT_EQ(resumed_result.best_epoch, full_result.best_epoch);

  auto a = full->parameters(), b = resumed->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " differs after resume";
  }
  fs::remove_all(full_dir);
  fs::remove_all(part_dir);
}

TEST(Trainer, EarlyStoppingKeepsTheBestEpoch) {
  auto train = make_problem(200, 5), val = make_problem(60, 6);
  auto tr = train.rows(), va = val.rows();
  auto opts = small_options();
  opts.epochs = 30;
  opts.early_stopping_patience = 2;
  auto model = make_mlp(3);
  auto r = train::train_model(*model, tr, &va, 4, opts);
  EXPECT_TRUE(r.stopped_early);
  EXPECT_LT(r.history.size(), 30u);
  double best = -1;
  int best_epoch = 0;
  for (const auto& e : r.history) {
    if (e.val_macro_f1 > best) best = e.val_macro_f1, best_epoch = e.epoch;
  }
  EXPECT_EQ(r.best_epoch, best_epoch);
  EXPECT_DOUBLE_EQ(r.best_val_macro_f1, best);
}

// The weights left in the model are the best epoch's, whether a later epoch was worse (a copy is
// restored; the copy is taken lazily, into the same buffers each time) or the run ended on the best
// epoch (no copy taken); checked against each epoch's weights as its callback saw them.
TEST(Trainer, LeavesTheBestEpochsWeightsInTheModel) {
  auto train = make_problem(200, 5), val = make_problem(60, 6);
  auto tr = train.rows(), va = val.rows();
  for (const int stop_at : {0, 1, 2, 4}) {
    auto opts = small_options();
    opts.epochs = 12;
    opts.early_stopping_patience = 0;
    auto model = make_mlp(3);
    std::vector<std::vector<torch::Tensor>> seen;
    train::TrainerCallbacks cb;
    cb.on_epoch = [&](const train::EpochRecord&) {
      std::vector<torch::Tensor> w;
      for (const auto& p : model->parameters()) w.push_back(p.detach().clone());
      seen.push_back(std::move(w));
    };
    if (stop_at > 0) cb.should_stop = [&](const train::EpochRecord& rec) { return rec.epoch >= stop_at; };
    auto r = train::train_model(*model, tr, &va, 4, opts, cb);
    ASSERT_EQ(seen.size(), r.history.size());
    ASSERT_GE(r.best_epoch, 1);
    const auto& want = seen.at(static_cast<std::size_t>(r.best_epoch - 1));
    const auto got = model->parameters();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(torch::equal(got[i], want[i])) << "stop_at " << stop_at << ": parameter " << i
                                                 << " is not epoch " << r.best_epoch << "'s";
    }
    if (stop_at == 0) {
      EXPECT_LT(r.best_epoch, static_cast<int>(r.history.size())) << "the case of a worse last epoch is not covered";
    }
  }
}

TEST(Trainer, DivergenceAbortsWithAnActionableMessage) {
  auto train = make_problem(64, 8);
  for (auto& v : train.values) v = std::numeric_limits<float>::infinity();
  auto tr = train.rows();
  auto opts = small_options();
  opts.max_nonfinite_steps = 2;
  auto model = make_mlp(1);
  int warnings = 0;
  train::TrainerCallbacks cb;
  cb.on_warning = [&](const std::string&) { ++warnings; };
  try {
    (void)train::train_model(*model, tr, nullptr, 4, opts, cb);
    FAIL() << "expected divergence";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lower the learning rate"), std::string::npos) << e.what();
  }
  EXPECT_EQ(warnings, 2);
}

TEST(Trainer, BadOptionsNameTheField) {
  auto train = make_problem(10, 9);
  auto tr = train.rows();
  auto model = make_mlp(1);
  auto opts = small_options();
  opts.batch_size = 0;
  try {
    (void)train::train_model(*model, tr, nullptr, 4, opts);
    FAIL();
  } catch (const kiln::ConfigError& e) {
    EXPECT_STREQ(e.what(), "train.batch_size must be >= 1, got 0");
  }
  opts = small_options();
  opts.resume = true;
  try {
    (void)train::train_model(*model, tr, nullptr, 4, opts);
    FAIL();
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("resume needs a run directory"), std::string::npos);
  }
}

TEST(Trainer, ResumeWithoutCheckpointIsAClearError) {
  auto train = make_problem(10, 9);
  auto tr = train.rows();
  auto model = make_mlp(1);
  auto opts = small_options();
  auto dir = fresh_dir("nockpt");
  fs::create_directories(dir);
  opts.run_dir = dir.string();
  opts.resume = true;
  try {
    (void)train::train_model(*model, tr, nullptr, 4, opts);
    FAIL();
  } catch (const kiln::ArtifactError& e) {
    EXPECT_NE(std::string(e.what()).find("no checkpoint to resume from"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A small bag model trains on one thread whatever the caller's team (its steps are too short for a
// second thread to pay for), one with more dense arithmetic on the caller's team; the weights are
// the same either way. Fails if the policy is removed (threads 2 for the small model) or applied to
// every model (threads 1 for the large one).
TEST(Trainer, ASmallBagModelTrainsOnOneThreadWithTheSameWeights) {
  auto train = make_problem(300, 5), val = make_problem(80, 6);
  auto tr = train.rows(), va = val.rows();
  const int before = at::get_num_threads();
  auto run = [&](int threads, const std::vector<int64_t>& hidden) {
    at::set_num_threads(threads);
    torch::manual_seed(21);
    nn::ModelSpec spec;
    spec.family = "mlp";
    spec.params = {{"hidden", hidden}, {"dropout", 0.2}};
    auto model = nn::make_model(spec, nn::bag_spec(40), 4);
    const auto r = train::train_model(*model, tr, &va, 4, small_options());
    EXPECT_EQ(at::get_num_threads(), threads) << "the caller's team was not put back";
    std::vector<torch::Tensor> weights;
    for (const auto& p : model->parameters()) weights.push_back(p.detach().clone());
    return std::make_pair(r, weights);
  };
  // Batch 16, 6 FLOPs per dense weight and per looked-up row element (5 rows an example): hidden
  // [16] about 16 kFLOP a step, [1024, 1024] about 101 MFLOP.
  const auto [small_two, w_two] = run(2, {16});
  const auto [small_one, w_one] = run(1, {16});
  const auto [large_two, w_large] = run(2, {1024, 1024});
  at::set_num_threads(before);
  EXPECT_EQ(small_two.threads, 1);
  EXPECT_GT(small_two.step_flops, 0.0);
  EXPECT_LT(small_two.step_flops, train::kSmallStepFlops);
  EXPECT_EQ(small_one.threads, 1);
  ASSERT_EQ(w_two.size(), w_one.size());
  for (std::size_t i = 0; i < w_two.size(); ++i) EXPECT_TRUE(torch::equal(w_two[i], w_one[i])) << "parameter " << i;
  EXPECT_GE(large_two.step_flops, train::kSmallStepFlops);
  EXPECT_EQ(large_two.threads, 2);
}
