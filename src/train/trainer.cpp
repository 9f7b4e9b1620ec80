#include "kiln/train/trainer.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/train/data_parallel.h"
#include "kiln/train/metrics.h"
#include "bag_sgd.h"
#include "checkpoint.h"
#include "fused_lbfgs.h"
#include "linear_lbfgs.h"
#include "metrics_log.h"

namespace fs = std::filesystem;

namespace kiln::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The permutation of epoch `epoch` (1-based): a pure function of (seed, epoch), so a resumed run
// visits batches in the same order as an uninterrupted one. Portable Fisher-Yates on mt19937_64.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int epoch) {
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t j = rng() % static_cast<uint64_t>(i + 1);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

nlohmann::json epoch_json(const EpochRecord& r) {
  auto num = [](double v) -> nlohmann::json { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"type", "epoch"},          {"epoch", r.epoch},
          {"train_loss", num(r.train_loss)}, {"val_loss", num(r.val_loss)},
          {"val_accuracy", num(r.val_accuracy)}, {"val_macro_f1", num(r.val_macro_f1)},
          {"lr", r.lr},               {"grad_norm", num(r.grad_norm)},
          {"seconds", r.seconds},     {"train_seconds", r.train_seconds},
          {"skipped_steps", r.skipped_steps}};
}

EpochRecord epoch_from_json(const nlohmann::json& j) {
  auto num = [&](const char* k) { return j.at(k).is_null() ? kNaN : j.at(k).get<double>(); };
  EpochRecord r;
  r.epoch = j.at("epoch").get<int>();
  r.train_loss = num("train_loss");
  r.val_loss = num("val_loss");
  r.val_accuracy = num("val_accuracy");
  r.val_macro_f1 = num("val_macro_f1");
  r.lr = j.at("lr").get<double>();
  r.grad_norm = num("grad_norm");
  r.seconds = j.at("seconds").get<double>();
  r.train_seconds = j.value("train_seconds", r.seconds);  // checkpoints before it was recorded
  r.skipped_steps = j.at("skipped_steps").get<int64_t>();
  return r;
}

std::vector<int64_t> class_counts(const std::vector<int64_t>& y, int64_t num_classes) {
  std::vector<int64_t> counts(static_cast<std::size_t>(num_classes), 0);
  for (int64_t c : y) ++counts[static_cast<std::size_t>(c)];
  return counts;
}

void check_labels(const LabeledBatch& rows, int64_t num_classes, const char* name) {
  if (static_cast<int64_t>(rows.y.size()) != rows.x.size()) {
    throw ConfigError(std::string("trainer: ") + name + " has " + std::to_string(rows.x.size()) + " examples but " +
                      std::to_string(rows.y.size()) + " labels");
  }
  for (std::size_t i = 0; i < rows.y.size(); ++i) {
    if (rows.y[i] < 0 || rows.y[i] >= num_classes) {
      throw DataError(std::string("trainer: ") + name + " label[" + std::to_string(i) + "] = " +
                      std::to_string(rows.y[i]) + " is outside [0, " + std::to_string(num_classes) + ")");
    }
  }
}

}  // namespace

void validate(const TrainerOptions& o) {
  auto fail = [](const std::string& field, const std::string& rule, const std::string& got) {
    throw ConfigError("train." + field + " must be " + rule + ", got " + got);
  };
  if (o.epochs < 1) fail("epochs", ">= 1", std::to_string(o.epochs));
  if (o.batch_size < 1) fail("batch_size", ">= 1", std::to_string(o.batch_size));
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip)) fail("grad_clip", ">= 0 (0 disables clipping)", std::to_string(o.grad_clip));
  if (o.early_stopping_patience < 0) fail("early_stopping_patience", ">= 0 (0 disables)", std::to_string(o.early_stopping_patience));
  if (o.device != "cpu" && o.device.rfind("cuda", 0) != 0) fail("device", "cpu or cuda[:N]", "'" + o.device + "'");
  if (o.stop_after_epochs < 0) fail("stop_after_epochs", ">= 0 (0 = no limit)", std::to_string(o.stop_after_epochs));
  if (o.calibrate != "temperature" && o.calibrate != "none") fail("calibrate", "temperature or none", "'" + o.calibrate + "'");
  if (o.max_nonfinite_steps < 1) fail("max_nonfinite_steps", ">= 1", std::to_string(o.max_nonfinite_steps));
  if (o.resume && o.run_dir.empty()) throw ConfigError("train.resume needs a run directory (--out) holding a checkpoint");
  validate(o.optimizer);
  validate(o.schedule);
  validate(o.loss);
  if (o.solver != "minibatch" && o.solver != "per_example" && o.solver != "lbfgs") {
    fail("solver", "minibatch, per_example or lbfgs", "'" + o.solver + "'");
  }
  if (o.solver_threads < 1) fail("solver_threads", ">= 1", std::to_string(o.solver_threads));
  if (o.solver == "per_example") {
    auto need = [](const std::string& field, const std::string& rule, const std::string& got) {
      throw ConfigError("train.solver per_example needs " + field + " " + rule + " (one plain SGD step per example), got " +
                        got + "; set it or use train.solver minibatch");
    };
    if (o.batch_size != 1) need("train.batch_size", "1", std::to_string(o.batch_size));
    if (o.optimizer.kind != "sgd") need("train.optimizer", "sgd", "'" + o.optimizer.kind + "'");
    if (o.optimizer.momentum != 0) need("train.momentum", "0", std::to_string(o.optimizer.momentum));
    if (effective_weight_decay(o.optimizer) != 0) need("train.weight_decay", "0", std::to_string(effective_weight_decay(o.optimizer)));
    if (o.grad_clip != 0) need("train.grad_clip", "0", std::to_string(o.grad_clip));
    if (o.loss.kind != "cross_entropy") need("train.loss", "cross_entropy", "'" + o.loss.kind + "'");
    if (o.loss.label_smoothing != 0) need("train.label_smoothing", "0", std::to_string(o.loss.label_smoothing));
    if (o.device != "cpu") need("train.device", "cpu", "'" + o.device + "'");
  }
  if (o.solver == "lbfgs") {
    auto need = [](const std::string& field, const std::string& rule, const std::string& got) {
      throw ConfigError("train.solver lbfgs needs " + field + " " + rule + " (L-BFGS on the full-batch logistic loss), got " +
                        got + "; set it or use train.solver minibatch");
    };
    if (o.loss.kind != "cross_entropy") need("train.loss", "cross_entropy", "'" + o.loss.kind + "'");
    if (o.loss.label_smoothing != 0) need("train.label_smoothing", "0", std::to_string(o.loss.label_smoothing));
    if (o.device != "cpu") need("train.device", "cpu", "'" + o.device + "'");
  }
  if (!(o.C > 0) || !std::isfinite(o.C)) fail("C", "> 0 (the inverse L2 strength, as scikit-learn's C)", std::to_string(o.C));
  if (o.lbfgs_iterations < 1) fail("lbfgs_iterations", ">= 1", std::to_string(o.lbfgs_iterations));
  if (o.lbfgs_history < 1) fail("lbfgs_history", ">= 1", std::to_string(o.lbfgs_history));
  if (!(o.tol >= 0) || !std::isfinite(o.tol)) fail("tol", ">= 0", std::to_string(o.tol));
}

namespace {

// The parameters whose gradient is row-sparse: EmbeddingBag tables with sparse gradients on.
std::vector<bool> sparse_parameters(nn::Model& model, const std::vector<torch::Tensor>& params) {
  std::vector<bool> sparse(params.size(), false);
  for (const auto& m : model.modules(/*include_self=*/false)) {
    const auto* bag = m->as<torch::nn::EmbeddingBag>();
    if (!bag || !bag->options.sparse()) continue;
    for (std::size_t k = 0; k < params.size(); ++k) sparse[k] = sparse[k] || params[k].is_same(bag->weight);
  }
  return sparse;
}

// Gathers a training step's examples and targets into buffers reused across steps. The views of one
// step must be dead before the next fill (the trainer's step ends with its backward pass).
class BatchBuffers {
 public:
  nn::Batch fill(const LabeledBatch& rows, const int64_t* ids, int64_t count, torch::Tensor* targets) {
    if (!targets_.defined() || targets_.numel() < count) targets_ = torch::empty({std::max<int64_t>(count, 64)}, torch::kInt64);
    int64_t* tp = targets_.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) tp[i] = rows.y[static_cast<std::size_t>(ids[i])];
    *targets = targets_.narrow(0, 0, count);
    return gatherer_.gather(rows.x, ids, count);
  }

 private:
  nn::BatchGatherer gatherer_;
  torch::Tensor targets_;
};

}  // namespace

ClassificationMetrics compute_metrics_from_proba(const std::vector<int64_t>& y_true, const torch::Tensor& probabilities,
                                                 int64_t num_classes) {
  auto p = probabilities.to(torch::kCPU, torch::kFloat64).contiguous();
  auto am = p.argmax(1).contiguous();
  const int64_t n = p.size(0);
  std::vector<int64_t> pred(am.data_ptr<int64_t>(), am.data_ptr<int64_t>() + n);
  // Renormalize rows: float32 softmax sums may be off by more than the metrics' tolerance.
  p = p / p.sum(1, true).clamp_min(1e-300);
  std::vector<double> probs(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
  return compute_metrics(y_true, pred, probs, num_classes);
}

namespace {

// The arithmetic of one minibatch step of a model that reads bag features through lookup tables
// and has only linear layers besides: 6 FLOPs (a multiply-add forward, two backward) per dense
// weight per example, and as many per looked-up row element (the bag's sum, its row gradient, the
// optimizer's update of the touched rows), `bag_nnz` rows an example. nullopt for any other model
// (a convolution or attention reuses its weights over positions, so their count says nothing of its
// work).
std::optional<double> bag_model_step_flops(nn::Model& model, int64_t batch_size, double bag_nnz) {
  int64_t dense = 0, bag_width = 0;
  bool has_bag = false;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    const auto own = m->parameters(/*recurse=*/false);
    if (auto* bag = m->as<torch::nn::EmbeddingBag>()) {
      has_bag = true;
      bag_width += bag->weight.size(1);
      continue;
    }
    if (own.empty()) continue;
    if (!m->as<torch::nn::Linear>() && !m->as<torch::nn::LayerNorm>()) return std::nullopt;
    for (const auto& p : own) dense += p.numel();
  }
  if (!has_bag) return std::nullopt;
  for (const auto& p : model.parameters(/*recurse=*/false)) dense += p.numel();
  return 6.0 * static_cast<double>(batch_size) * (static_cast<double>(dense) + bag_nnz * static_cast<double>(bag_width));
}

// Sets the training loop's threads (LibTorch's team on this thread and the BLAS pool) and puts the
// caller's back when it ends.
class ThreadsForTraining {
 public:
  explicit ThreadsForTraining(int n) : before_(at::get_num_threads()), changed_(n != before_) {
    if (!changed_) return;
    at::set_num_threads(n);
    core::set_blas_threads(n);
  }
  ~ThreadsForTraining() {
    if (!changed_) return;
    at::set_num_threads(before_);
    core::set_blas_threads(before_);  // Kiln keeps the BLAS pool at LibTorch's count
  }
  ThreadsForTraining(const ThreadsForTraining&) = delete;
  ThreadsForTraining& operator=(const ThreadsForTraining&) = delete;

 private:
  int before_;
  bool changed_;
};

}  // namespace

TrainResult train_model(nn::Model& model, const LabeledBatch& train, const LabeledBatch* val, int64_t num_classes,
                        const TrainerOptions& options, const TrainerCallbacks& callbacks) {
  validate(options);
  check_labels(train, num_classes, "training set");
  if (val) check_labels(*val, num_classes, "validation set");
  if (train.x.size() == 0) throw DataError("trainer: the training set is empty");
  auto warn = [&](const std::string& msg) {
    if (callbacks.on_warning) callbacks.on_warning(msg);
  };

  torch::Device device(options.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw ConfigError("train.device is '" + options.device +
                      "' but this LibTorch has no CUDA (or no GPU is visible); use --device cpu or build against a "
                      "CUDA LibTorch via Torch_DIR");
  }
  DataParallel* dp = callbacks.parallel && callbacks.parallel->world_size() > 1 ? callbacks.parallel : nullptr;
  if (dp) {
    const std::string ranks = std::to_string(dp->world_size()) + " processes";
    if (options.solver != "minibatch") {
      throw ConfigError("train.solver " + options.solver + " runs in one process, but this job has " + ranks +
                        "; use train.solver minibatch or --nproc 1");
    }
    if (device.is_cuda()) {
      throw ConfigError("data-parallel training runs on the CPU (Gloo) in this build, but train.device is '" +
                        options.device + "'; use --device cpu or --nproc 1");
    }
    if (options.batch_size < dp->world_size()) {
      throw ConfigError("train.batch_size " + std::to_string(options.batch_size) + " is the global batch, split over " +
                        ranks + ", so each would get less than one example; raise --batch-size to at least " +
                        std::to_string(dp->world_size()) + " or lower --nproc");
    }
  }
  const bool rank0 = !dp || dp->rank() == 0;
  model.to(device);
  // Row-sparse gradients for the embedding tables: a step touches only the batch's features.
  model.set_sparse_gradients(options.sparse_gradients);
  if (!options.run_dir.empty() && rank0) fs::create_directories(options.run_dir);

  const int64_t n = train.x.size();
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = batches * options.epochs;
  auto params = model.parameters();
  std::vector<double> param_norms;  // per-parameter gradient norms of the current step, `params` order
  std::vector<bool> no_decay;
  for (const auto& item : model.named_parameters()) no_decay.push_back(model.weight_decay_exempt(item.key()));
  // The L-BFGS solver optimizes the linear model's two tensors with torch's LBFGS (its history is
  // optimizer state, so checkpoints and resume carry it like any optimizer's).
  const bool lbfgs = options.solver == "lbfgs";
  std::optional<nn::LinearParts> linear;
  if (lbfgs) {
    linear = model.linear_parts();
    if (!linear) {
      throw ConfigError("train.solver lbfgs trains softmax regression over sparse features (family linear); this model is "
                        "not — use train.solver minibatch");
    }
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      lbfgs ? std::make_unique<FusedLbfgs>(std::vector<torch::Tensor>{linear->table, linear->bias},
                                                    torch::optim::LBFGSOptions(1.0)
                                                        .max_iter(options.lbfgs_iterations)
                                                        .tolerance_grad(0)
                                                        .tolerance_change(1e-9)
                                                        .history_size(options.lbfgs_history)
                                                        .line_search_fn("strong_wolfe"))
            : make_optimizer(params, options.optimizer, no_decay);
  auto schedule = make_schedule(options.schedule, options.optimizer.lr, total_steps);
  auto loss_fn = make_loss(options.loss, class_counts(train.y, num_classes));

  TrainResult result;
  result.best_val_macro_f1 = val ? -1.0 : kNaN;
  // A small bag model trains on one thread: on the 2-core VM, the seed recipe's MLP (5.7 MFLOP a
  // step on Brown) ran an epoch in 395 ms on one thread against 560 ms on two, the linear model in
  // 250 ms against 480 ms, the embedding bag in 700 ms against 900 ms, with the same weights to the
  // bit: each step's few small products woke the second thread (or OpenBLAS's, which then spun in
  // sched_yield) for less work than the waking cost. On SpamAssassin's emails (about 220 rows an
  // example) the embedding bag (15.1 MFLOP a step) and the seed recipe (44) keep both.
  int train_threads = at::get_num_threads();
  if (options.solver == "minibatch" && device.is_cpu() && !dp && train_threads > 1) {
    const double bag_nnz = train.x.has(nn::kBagIndices)
                               ? static_cast<double>(train.x.get(nn::kBagIndices).numel()) / static_cast<double>(n)
                               : 0.0;
    if (const auto flops = bag_model_step_flops(model, options.batch_size, bag_nnz)) {
      result.step_flops = *flops;
      if (*flops < kSmallStepFlops) train_threads = 1;
    }
  }
  const ThreadsForTraining threads_for_training(train_threads);
  result.threads = train_threads;
  int start_epoch = 1;
  int epochs_without_improvement = 0;
  CheckpointWriter checkpoints;  // each epoch's checkpoint is written while the next one trains
  int nonfinite_run = 0;
  if (options.resume) {
    CheckpointState st = load_checkpoint(options.run_dir, model, *optimizer);
    schedule->load_state(st.schedule);
    for (const auto& e : st.history) result.history.push_back(epoch_from_json(e));
    result.best_epoch = st.best_epoch;
    result.best_val_macro_f1 = val ? st.best_val_macro_f1 : kNaN;
    epochs_without_improvement = st.epochs_without_improvement;
    start_epoch = st.epoch + 1;
    result.resumed = true;
    if (st.stopped_early) {
      result.stopped_early = true;
      start_epoch = options.epochs + 1;
    }
  }
  const LogResume log_resume{"epoch", start_epoch - 1};  // the interrupted run redoes the epochs after its checkpoint
  MetricsLog log(rank0 ? options.run_dir : std::string(), options.resume ? &log_resume : nullptr);
  if (dp) {
    // Every rank starts from rank 0's weights (buffers too), whatever its own initialisation or
    // checkpoint held; the optimizer states agree already (fresh, or the same checkpoint).
    std::vector<torch::Tensor> tensors = model.parameters();
    for (const auto& b : model.buffers()) tensors.push_back(b);
    dp->broadcast(tensors);
    dp->attach(params, sparse_parameters(model, params));
  }
  // The hooks go with this function: later backward passes on the model are this process's own.
  struct Detach {
    DataParallel* dp;
    ~Detach() {
      if (dp) dp->detach();
    }
  } detach_hooks{dp};

  // Per-parameter consecutive steps with a vanishing gradient norm.
  auto named = model.named_parameters();
  std::vector<int> vanishing(named.size(), 0);
  std::vector<bool> warned(named.size(), false);
  for (std::size_t p = 0; p < named.size(); ++p) warned[p] = model.zero_gradient_by_design(named[p].key());

  // The per-example solver's fused kernel updates the bag table and the output layer in place.
  const bool per_example = options.solver == "per_example";
  std::optional<nn::BagLinearParts> bag_parts;
  std::vector<float> example_weights;
  if (per_example) {
    bag_parts = model.bag_linear_parts();
    if (!bag_parts) {
      throw ConfigError("train.solver per_example trains models that are a feature bag plus one linear layer (family "
                        "embedbag with hidden 0 and dropout 0); this model is not — use train.solver minibatch");
    }
  }
  if (per_example || lbfgs) {
    const auto counts = class_counts(train.y, num_classes);
    std::vector<double> w(static_cast<std::size_t>(num_classes), 1.0);
    if (options.loss.class_weight == "balanced") {
      std::vector<int64_t> present;
      for (auto c : counts) if (c > 0) present.push_back(c);
      const auto bw = balanced_class_weights(present);
      for (std::size_t c = 0, k = 0; c < counts.size(); ++c) if (counts[c] > 0) w[c] = bw[k++];
    } else if (options.loss.class_weight == "explicit") {
      if (static_cast<int64_t>(options.loss.class_weights.size()) != num_classes) {
        throw ConfigError("loss.class_weights has " + std::to_string(options.loss.class_weights.size()) +
                          " values but there are " + std::to_string(num_classes) + " classes");
      }
      w = options.loss.class_weights;
    }
    example_weights.assign(w.begin(), w.end());
  }
  std::optional<LinearObjective> objective;
  torch::Tensor grad_table, grad_bias;
  if (lbfgs) objective.emplace(train.x, train.y, example_weights, linear->table.size(0), num_classes, options.C);
  bool converged = false;
  double last_objective = std::numeric_limits<double>::infinity();

  // The best epoch's weights, copied only once the next epoch is about to change them: when the
  // loop ends right after an improving epoch (the last one, early stopping, a callback, or the
  // schedule's end) the live weights are the best and nothing is copied.
  BestWeights best;
  bool capture_pending = false;
  BatchBuffers buffers;
  int64_t global_step = schedule->step_count();
  int epochs_run = 0;
  for (int epoch = start_epoch; epoch <= options.epochs; ++epoch) {
    if (options.stop_after_epochs > 0 && epochs_run >= options.stop_after_epochs) break;
    const auto t0 = std::chrono::steady_clock::now();
    if (capture_pending) {
      best.capture(model);
      capture_pending = false;
    }
    model.train();
    auto order = epoch_order(n, options.seed, epoch);
    double loss_sum = 0, norm_sum = 0;
    int64_t loss_count = 0, skipped = 0;
    if (per_example) {
      torch::NoGradGuard no_grad;
      BagSgdEpoch run;
      run.parts = &*bag_parts;
      run.x = &train.x;
      run.y = &train.y;
      run.order = &order;
      run.class_weights = &example_weights;
      run.base_lr = schedule->base_lr();
      run.factor = [&schedule](int64_t step) { return schedule->factor(step); };
      run.first_step = global_step;
      run.threads = options.solver_threads;
      const int64_t step0 = global_step;
      run.on_block = [&](int64_t done, double block_loss) {
        if (callbacks.on_step) {
          callbacks.on_step(StepInfo{epoch, step0 + done, done, n, done, block_loss, schedule->base_lr() * schedule->factor(step0 + done), kNaN});
        }
      };
      const BagSgdResult r = bag_sgd_epoch(run);
      for (int64_t k = 0; k < n; ++k) schedule->step();
      global_step += n;
      if (!r.finite) {
        log.flush();
        throw Error("training diverged: a non-finite loss in epoch " + std::to_string(epoch) +
                    " (per-example SGD); lower the learning rate (--lr)");
      }
      loss_sum = r.loss_sum;
      loss_count = r.examples;
      log.write({{"type", "step"}, {"epoch", epoch}, {"step", global_step},
                 {"loss", r.examples ? r.loss_sum / static_cast<double>(r.examples) : kNaN}, {"lr", schedule->lr()}});
    }
    if (lbfgs) {
      torch::NoGradGuard no_grad;
      auto closure = [&]() -> torch::Tensor {
        // Into the grads the optimizer offers (views of its flat gradient buffer: no copy), else
        // into buffers of this loop's own.
        torch::Tensor gt = linear->table.grad().defined() ? linear->table.grad() : grad_table;
        torch::Tensor gb = linear->bias.grad().defined() ? linear->bias.grad() : grad_bias;
        const double f = objective->evaluate(linear->table, linear->bias, gt, gb);
        linear->table.mutable_grad() = gt;
        linear->bias.mutable_grad() = gb;
        return torch::tensor(f, torch::kFloat64);
      };
      optimizer->step(closure);
      // The objective and its gradient at the epoch's end point, which the optimizer evaluated
      // (not always last: the line search may go back to an earlier point): the epoch's train loss
      // and the convergence test.
      const auto& fused = static_cast<const FusedLbfgs&>(*optimizer);
      const double objective_now = fused.last_loss();
      const double data_loss = objective_now - objective->penalty(linear->table);
      const double max_grad = fused.last_max_grad();
      global_step += options.lbfgs_iterations;
      if (!std::isfinite(data_loss) || !std::isfinite(max_grad)) {
        log.flush();
        throw Error("training diverged: a non-finite loss in epoch " + std::to_string(epoch) +
                    " (L-BFGS); check the features for extreme values or raise train.C's regularization (lower C)");
      }
      // Converged at tol, or stalled: an epoch that no longer lowers the objective beyond float32's
      // precision (torch's LBFGS then moves by rounding noise or not at all).
      converged = max_grad * options.C * objective->weight_sum() <= options.tol ||
                  objective_now >= last_objective - 1e-7 * std::abs(last_objective);
      last_objective = objective_now;
      loss_sum = data_loss;
      loss_count = 1;
      norm_sum = max_grad;
      log.write({{"type", "step"}, {"epoch", epoch}, {"step", global_step}, {"loss", data_loss}, {"max_grad", max_grad}});
      if (callbacks.on_step) callbacks.on_step(StepInfo{epoch, global_step, 1, 1, n, data_loss, 1.0, max_grad});
    }
    for (int64_t b = 0; b < (per_example || lbfgs ? 0 : batches); ++b) {
      const int64_t start = b * options.batch_size;
      const int64_t count = std::min(options.batch_size, n - start);
      // Data-parallel: this rank's contiguous part of the global batch.
      const ShardRange part = dp ? shard_of_batch(count, dp->rank(), dp->world_size()) : ShardRange{0, count};
      const int64_t local_count = part.end - part.begin;

      const double lr = schedule->lr();
      set_lr(*optimizer, lr);
      clear_gradients(params);
      double loss_value = 0;
      double grad_norm = kNaN;
      bool ok = true;
      if (local_count > 0) {
        torch::Tensor target;
        auto batch = buffers.fill(train, order.data() + start + part.begin, local_count, &target);
        if (train.augment) batch = train.augment(batch);
        if (!device.is_cpu()) {
          batch = batch.to(device);
          target = target.to(device);
        }
        auto loss = loss_fn(model.forward(batch), target);
        loss_value = loss.item<double>();
        ok = std::isfinite(loss_value);
        if (dp) {
          // Backward of this part's share of the global loss (its weighted sum); the reducer sums the
          // parts and divides by the batch's total weight.
          // A part whose targets all weigh 0 adds nothing (its own weighted mean is 0/0).
          const double weight = loss_fn.normalizer(target);
          dp->begin_step(weight, weight > 0 ? loss_value : 0.0, local_count);  // overlaps backward
          if (ok && weight > 0) (loss * weight).backward();
          loss_value = dp->reduce_gradients(weight, weight > 0 ? loss_value : 0.0, local_count).loss();
          ok = std::isfinite(loss_value);
        } else if (ok) {
          loss.backward();
        }
      } else {
        loss_value = dp->reduce_gradients(0.0, 0.0, 0).loss();
        ok = std::isfinite(loss_value);
      }
      if (ok) {
        grad_norm = clip_grad_norm(params, options.grad_clip > 0 ? options.grad_clip
                                                                 : std::numeric_limits<double>::infinity(),
                                   &param_norms);
        ok = std::isfinite(grad_norm);
      }
      ++global_step;
      if (!ok) {
        ++skipped;
        ++nonfinite_run;
        clear_gradients(params);
        std::ostringstream msg;
        msg << "epoch " << epoch << " step " << global_step << ": non-finite "
            << (std::isfinite(loss_value) ? "gradient" : "loss") << "; step skipped (" << nonfinite_run << "/"
            << options.max_nonfinite_steps << " in a row)";
        warn(msg.str());
        log.write({{"type", "warning"}, {"step", global_step}, {"message", msg.str()}});
        if (nonfinite_run >= options.max_nonfinite_steps) {
          log.flush();
          throw Error("training diverged: " + std::to_string(nonfinite_run) +
                      " consecutive steps had a non-finite loss or gradient (epoch " + std::to_string(epoch) +
                      "); lower the learning rate (--lr), enable gradient clipping (--grad-clip 1.0), or check the "
                      "data for extreme values");
        }
        schedule->step();
        continue;
      }
      nonfinite_run = 0;
      optimizer->step();
      schedule->step();
      loss_sum += loss_value * static_cast<double>(count);
      loss_count += count;
      norm_sum += grad_norm;

      // Gradient health: per-parameter norms, vanishing warnings.
      const bool log_layers = global_step % 50 == 0 || b + 1 == batches;
      nlohmann::json layer_norms = nlohmann::json::object();
      for (std::size_t p = 0; p < named.size(); ++p) {
        const double gn = param_norms[p];
        if (std::isnan(gn)) continue;  // no gradient
        if (log_layers) layer_norms[named[p].key()] = gn;
        vanishing[p] = gn < options.vanishing_grad_norm ? vanishing[p] + 1 : 0;
        if (vanishing[p] >= options.vanishing_patience && !warned[p]) {
          warned[p] = true;
          std::ostringstream msg;
          msg << "vanishing gradient: '" << named[p].key() << "' has had gradient norm < " << options.vanishing_grad_norm
              << " for " << vanishing[p] << " steps; check the learning rate, initialisation and activations";
          warn(msg.str());
          log.write({{"type", "warning"}, {"step", global_step}, {"message", msg.str()}});
        }
      }
      nlohmann::json step_log = {{"type", "step"}, {"epoch", epoch}, {"step", global_step},
                                 {"loss", loss_value}, {"lr", lr}, {"grad_norm", grad_norm}};
      if (log_layers) step_log["layer_grad_norms"] = layer_norms;
      log.write(step_log);
      if (callbacks.on_step) {
        callbacks.on_step(StepInfo{epoch, global_step, b + 1, batches, start + count, loss_value, lr, grad_norm});
      }
    }

    EpochRecord rec;
    rec.epoch = epoch;
    rec.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec.train_loss = loss_count ? loss_sum / static_cast<double>(loss_count) : kNaN;
    rec.grad_norm = lbfgs ? norm_sum
                    : !per_example && (batches - skipped) > 0 ? norm_sum / static_cast<double>(batches - skipped)
                                                              : kNaN;
    rec.lr = lbfgs ? 1.0 : schedule->lr();
    rec.skipped_steps = skipped;
    rec.val_loss = rec.val_accuracy = rec.val_macro_f1 = kNaN;
    bool improved = !val;
    if (val && val->x.size() > 0) {
      model.eval();
      if (rank0) {  // the ranks hold the same weights: rank 0 validates for all
        auto probs = nn::predict_proba(model, val->x, eval_chunk(options.batch_size), device);
        auto target = torch::tensor(val->y, torch::kInt64);
        rec.val_loss = torch::nll_loss(torch::log(probs.clamp_min(1e-12)), target).item<double>();
        auto m = compute_metrics_from_proba(val->y, probs, num_classes);
        rec.val_accuracy = m.accuracy;
        rec.val_macro_f1 = m.macro_f1;
      }
      if (dp) {
        const auto v = dp->broadcast_values({rec.val_loss, rec.val_accuracy, rec.val_macro_f1});
        rec.val_loss = v[0], rec.val_accuracy = v[1], rec.val_macro_f1 = v[2];
      }
      improved = rec.val_macro_f1 > result.best_val_macro_f1;
    }
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (improved) {
      result.best_epoch = epoch;
      if (val) result.best_val_macro_f1 = rec.val_macro_f1;
      epochs_without_improvement = 0;
    } else {
      ++epochs_without_improvement;
    }
    result.history.push_back(rec);
    log.write(epoch_json(rec));
    if (dp) {
      log.write({{"type", "data_parallel"}, {"epoch", epoch}, {"world_size", dp->world_size()},
                 {"steps", dp->reduced_steps()}, {"exposed_comm_seconds", dp->exposed_comm_seconds()}});
    }
    log.flush();
    if (callbacks.on_epoch) callbacks.on_epoch(rec);
    ++epochs_run;

    // L-BFGS stops at convergence as the others stop early: a resume does not continue the run.
    const bool stop = ((val && options.early_stopping_patience > 0 &&
                        epochs_without_improvement >= options.early_stopping_patience) ||
                       converged) &&
                      epoch < options.epochs;
    if (stop) result.stopped_early = true;
    if (!options.run_dir.empty() && rank0) {
      CheckpointState st;
      st.epoch = epoch;
      st.best_epoch = result.best_epoch;
      st.best_val_macro_f1 = val ? result.best_val_macro_f1 : 0.0;
      st.epochs_without_improvement = epochs_without_improvement;
      st.stopped_early = result.stopped_early;
      st.schedule = schedule->state();
      for (const auto& r : result.history) st.history.push_back(epoch_json(r));
      checkpoints.save(options.run_dir, model, *optimizer, st, improved);
    }
    if (improved) capture_pending = true;
    if (stop) break;
    bool stop_now = callbacks.should_stop && epoch < options.epochs && callbacks.should_stop(rec);
    if (dp) stop_now = dp->broadcast_values({stop_now ? 1.0 : 0.0})[0] != 0;  // rank 0 decides for all
    if (stop_now) {
      result.stopped_by_callback = true;
      break;
    }
  }

  checkpoints.wait();  // the last checkpoint on disk, or its failure reported
  // Restore the best epoch's weights (from memory, or from best.pt when it predates a resume), unless
  // the last epoch run was the best.
  if (capture_pending) {
    // the live weights are the best epoch's
  } else if (best.has_value()) {
    best.restore(model);
  } else if (!options.run_dir.empty() && result.best_epoch > 0 && rank0) {
    load_best(options.run_dir, model);
  }
  model.eval();
  return result;
}

}  // namespace kiln::train
