// Training checkpoints in a run directory:
//   checkpoint.pt   model + optimizer + RNG + trainer state of the last finished epoch
//   best.pt         model weights of the best epoch so far
//   checkpoint.json the trainer state, human-readable (informational; checkpoint.pt is authoritative)
// Each file is written to a temporary sibling and renamed: an interruption leaves the previous one.
#pragma once

#include <torch/torch.h>

#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::train {

struct CheckpointState {
  int epoch = 0;  ///< last finished epoch, 1-based
  int best_epoch = 0;
  double best_val_macro_f1 = 0;
  int epochs_without_improvement = 0;
  bool stopped_early = false;
  nlohmann::json schedule;
  std::vector<nlohmann::json> history;
  /// Loop-specific state of other training loops (pretraining's global step); null when none.
  nlohmann::json extra;
};

/// Saves checkpoint.pt (+ best.pt when `is_best`) and checkpoint.json. Throws IoError.
void save_checkpoint(const std::string& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const CheckpointState& state, bool is_best);

class CheckpointSnapshot;

/// Checkpoints written behind training: save() copies the model's and the optimizer's tensors (the
/// checkpoint is of that moment) into buffers it keeps for the next checkpoint, and returns; a
/// background thread serializes the copies and writes, syncs and renames the files (best.pt,
/// checkpoint.pt, checkpoint.json, in that order, each as save_checkpoint does, the same bytes)
/// while the next epoch trains. Optimizers other than AdamW and SGD are serialized on the calling
/// thread. One checkpoint at a time: save() first waits for the previous one and rethrows its
/// failure. On the Spam seed recipe the files' writes and syncs took 40-110 ms an epoch and the
/// serialization 40-70 ms.
class CheckpointWriter {
 public:
  CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  /// Waits for the last checkpoint; a failure of it is dropped here (call wait() to see it).
  ~CheckpointWriter();

  /// Throws IoError: this checkpoint's serialization, or the previous checkpoint's write.
  void save(const std::string& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
            const CheckpointState& state, bool is_best);
  /// Blocks until the last checkpoint is on disk. Throws its IoError.
  void wait();

 private:
  std::thread worker_;
  std::exception_ptr error_;
  std::unique_ptr<CheckpointSnapshot> snapshot_;
};

/// Restores model, optimizer and the global CPU RNG from run_dir/checkpoint.pt and returns the
/// trainer state. Throws ArtifactError naming the file when it is missing, corrupt or belongs to a
/// different model (parameter names or shapes differ).
[[nodiscard]] CheckpointState load_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                                              torch::optim::Optimizer& optimizer);

/// Loads run_dir/best.pt into `model`.
void load_best(const std::string& run_dir, torch::nn::Module& model);

/// An in-memory copy of a module's parameters and buffers.
class BestWeights {
 public:
  void capture(torch::nn::Module& model);
  void restore(torch::nn::Module& model) const;
  [[nodiscard]] bool has_value() const { return !tensors_.empty(); }

 private:
  std::vector<torch::Tensor> tensors_;
};

}  // namespace kiln::train
