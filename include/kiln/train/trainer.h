// The trainer: mini-batch training of a Model over encoded examples (a Batch), with validation each
// epoch, early stopping on validation macro-F1, best-checkpoint selection, gradient health checks,
// atomic per-epoch checkpoints and exact resume.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/nn/model.h"
#include "kiln/train/losses.h"
#include "kiln/train/lr_schedule.h"
#include "kiln/train/metrics.h"
#include "kiln/train/optimizer.h"

namespace kiln::train {

class DataParallel;  // kiln/train/data_parallel.h

/// A split ready for training: every example's tensors (on the CPU) and class ids in [0, num_classes).
struct LabeledBatch {
  nn::Batch x;
  std::vector<int64_t> y;
  /// Training-time augmentation applied to each training step's batch (e.g. prep::augment_all over
  /// the preprocessors); empty = none. Never applied to validation data.
  std::function<nn::Batch(const nn::Batch&)> augment;
};

struct TrainerOptions {
  /// Passes over the training set. Default 10.
  int epochs = 10;
  /// Examples per optimizer step. Default 64.
  int64_t batch_size = 64;
  /// Seeds weight init, shuffling and dropout. Default 42.
  uint64_t seed = 42;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  LossOptions loss;
  /// Clip gradients to this global L2 norm; 0 disables. Default 1.0.
  double grad_clip = 1.0;
  /// Stop after this many epochs without a better validation macro-F1; 0 disables. Default 3.
  int early_stopping_patience = 3;
  /// Embedding tables get row-sparse gradients and lazy optimizer updates (only the rows a batch
  /// touches; see make_optimizer). false: dense gradients, torch's optimizers exactly, a step costing
  /// O(table). Default true.
  bool sparse_gradients = true;
  /// "cpu" or "cuda" (where LibTorch has CUDA). Default "cpu".
  std::string device = "cpu";
  /// After training, "temperature": fit temperature scaling on the validation split (when there is
  /// one) and store it in the artifact; "none": leave the probabilities as the model gives them.
  /// Default "temperature".
  std::string calibrate = "temperature";
  /// "minibatch": the optimizer over mini-batches of `batch_size`, as above. "per_example":
  /// fastText's recipe for bag + linear models (nn::BagLinearParts: embedbag with hidden 0 and
  /// dropout 0): one plain SGD step per example, lr = optimizer.lr · the schedule's factor at the
  /// example's step (steps = examples × epochs; "linear" decays to 0 as fastText does), each
  /// example's loss scaled by its class weight, run by a fused kernel. Needs batch_size 1,
  /// optimizer sgd without momentum or weight decay, grad_clip 0, loss cross_entropy without label
  /// smoothing, device cpu. "lbfgs": full-batch L-BFGS on scikit-learn's LogisticRegression
  /// objective (L2 strength 1/C, class weights as sample weights, bias unpenalised; see
  /// linear_lbfgs.h) for the linear family: each epoch is `lbfgs_iterations` L-BFGS iterations
  /// (torch's LBFGS with the strong-Wolfe line search, `lbfgs_history` pairs), stopping early when the largest
  /// gradient component of scikit-learn's objective (C·Σ s_i ℓ_i + ½‖W‖²) falls to `tol`, or an
  /// epoch no longer lowers the objective; the optimizer, schedule, batch size and grad_clip are not
  /// used. Needs loss cross_entropy without label smoothing, device cpu. Default "minibatch".
  std::string solver = "minibatch";
  /// lbfgs solver: inverse L2 strength, as scikit-learn's C. Default 1.0.
  double C = 1.0;
  /// lbfgs solver: L-BFGS iterations per epoch (validation, checkpoints and pruning happen per
  /// epoch). Default 10.
  int lbfgs_iterations = 10;
  /// lbfgs solver: (s, y) pairs L-BFGS keeps (torch's history_size; 10 is scikit-learn's and
  /// SciPy's maxcor). Each iteration's two-loop recursion streams all of them: on a large table
  /// (WordNet's 124k terms x 45 classes, 22 MB a vector) that is about 40% of the solver's time.
  /// Default 10.
  int lbfgs_history = 10;
  /// lbfgs solver: converged when the largest gradient component of scikit-learn's objective is
  /// <= tol (scikit-learn's tol). Default 1e-4.
  double tol = 1e-4;
  /// per_example solver: threads updating the shared weights without locks (hogwild, as fastText);
  /// 1 gives the same weights on every run, more are faster but not bit-reproducible. Default 1.
  int solver_threads = 1;
  /// Directory for checkpoint files and metrics.jsonl; empty = none. Default empty.
  std::string run_dir;
  /// Continue from run_dir's last checkpoint. Default false.
  bool resume = false;
  /// Abort after this many consecutive steps with a non-finite loss or gradient. Default 5.
  int max_nonfinite_steps = 5;
  /// A layer whose gradient norm stays below this for `vanishing_patience` steps gets a warning.
  double vanishing_grad_norm = 1e-7;
  int vanishing_patience = 50;
  /// Stop after this many epochs of this invocation (>= 0), leaving a checkpoint that `resume`
  /// continues from; 0 = no limit. YAML `train.stop_after_epochs`; not persisted in the artifact's
  /// training config (it describes one invocation, not the run). Default 0.
  int stop_after_epochs = 0;
};

/// Validates once (including the optimizer, schedule and loss options); throws ConfigError naming
/// the field and the value.
void validate(const TrainerOptions& options);

/// Rows per forward pass when a training job evaluates (validation each epoch, calibration, the
/// final metrics): the training batch, at least 64. Inference keeps no activations for backward, so
/// such a pass needs less memory than a training step and the job's peak stays the steps'.
[[nodiscard]] inline int64_t eval_chunk(int64_t batch_size) { return batch_size > 64 ? batch_size : 64; }

struct EpochRecord {
  int epoch = 0;  ///< 1-based
  double train_loss = 0;
  double val_loss = 0;        ///< NaN without validation data
  double val_accuracy = 0;    ///< NaN without validation data
  double val_macro_f1 = 0;    ///< NaN without validation data
  double lr = 0;              ///< at the end of the epoch
  double grad_norm = 0;       ///< mean global gradient norm over the epoch (before clipping)
  double seconds = 0;        ///< the whole epoch: its steps and its validation
  double train_seconds = 0;  ///< the epoch's training steps alone (validation and checkpoints out)
  int64_t skipped_steps = 0;  ///< non-finite steps skipped
};

struct StepInfo {
  int epoch = 0;
  int64_t step = 0;        ///< global optimizer step, 1-based
  int64_t batch = 0;       ///< batch index within the epoch, 1-based
  int64_t batches = 0;     ///< batches per epoch
  int64_t examples = 0;    ///< examples seen this epoch
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
};

/// Progress hooks; the CLI draws bars from these. Called on the training thread.
struct TrainerCallbacks {
  std::function<void(const StepInfo&)> on_step;
  std::function<void(const EpochRecord&)> on_epoch;
  /// Asked after each epoch (after on_epoch and the checkpoint): true stops training there, as if
  /// the run had ended (the best epoch's weights are restored). Model selection prunes with it.
  std::function<bool(const EpochRecord&)> should_stop;
  std::function<void(const std::string&)> on_warning;
  /// Data-parallel training (train.solver minibatch, device cpu): this process is one rank of a job;
  /// null = one process. Each global batch of `batch_size` examples (the same batches, in the same
  /// order, as one process) is split across the ranks, which train on their part and sum gradients;
  /// the loss is normalised by the sum of the class weights over the whole batch, so N ranks take
  /// the steps one process would (up to floating-point summation order). Rank 0 alone validates
  /// (broadcasting the metrics), writes metrics.jsonl and checkpoints; on resume every rank reads
  /// the run directory's checkpoint, so any number of ranks may continue a run. Not owned.
  DataParallel* parallel = nullptr;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  int best_epoch = 0;           ///< epoch whose weights the model holds at the end
  double best_val_macro_f1 = 0; ///< NaN without validation data
  bool stopped_early = false;
  bool stopped_by_callback = false;  ///< should_stop returned true
  bool resumed = false;
  /// Threads the training loop ran on (LibTorch's intra-op team and the BLAS pool): the caller's,
  /// or 1 for a small bag model (see train_model).
  int threads = 0;
  /// FLOPs of one training step of a bag model with only linear layers besides (dense layers and
  /// looked-up rows; see train_model); 0 for other models.
  double step_flops = 0;
};

/// Trains `model` in place. On return the model holds the best epoch's weights (by validation
/// macro-F1; the last epoch's without validation data) and is in eval() mode.
/// A model that reads sparse bag features through lookup tables and has only linear layers
/// besides (the linear, embedbag and mlp families) trains on one thread on the CPU when its
/// arithmetic per step (6 FLOPs per dense weight and per looked-up row element, per example) is
/// below kSmallStepFlops: its steps are too short for a second thread to pay for waking it
/// (docs/performance.md). The results do not depend on it.
/// Checkpoints (run_dir/checkpoint.pt + checkpoint.json) are written atomically after every epoch.
/// 14 MFLOP: between the largest steps measured faster on one thread (the seed recipe on fortunes,
/// 12.3 MFLOP; on Brown, 5.7) and the smallest measured faster on two (the embedbag preset on
/// SpamAssassin, 15.1 MFLOP; the seed recipe there, 44), on the 2-core VM (docs/performance.md).
inline constexpr double kSmallStepFlops = 14e6;

[[nodiscard]] TrainResult train_model(nn::Model& model, const LabeledBatch& train, const LabeledBatch* val,
                                      int64_t num_classes, const TrainerOptions& options,
                                      const TrainerCallbacks& callbacks = {});

/// Metrics of probabilities [n, C] (any float dtype, any device) against y_true: y_pred is the
/// row argmax (first maximum).
[[nodiscard]] ClassificationMetrics compute_metrics_from_proba(const std::vector<int64_t>& y_true,
                                                               const torch::Tensor& probabilities, int64_t num_classes);

}  // namespace kiln::train
