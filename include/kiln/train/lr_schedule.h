// Learning-rate schedules: lr(step) = base_lr * factor(step). The base class owns the step counter;
// each kind supplies only factor(step) (as PyTorch's LRScheduler::get_lrs). The factors are those of
// torch.optim.lr_scheduler.LambdaLR with the lambdas written on each class (golden-tested).
//
// Usage per optimizer step: set_lr(optimizer, schedule.lr()); optimizer.step(); schedule.step();
// so step k (0-based) trains with base_lr * factor(k).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::train {

struct ScheduleOptions {
  /// "constant", "warmup_cosine", "linear" (HF get_linear_schedule_with_warmup) or "step"
  /// (multiply by `gamma` every `step_size` steps). Default "warmup_cosine".
  std::string kind = "warmup_cosine";
  /// Linear warmup length in optimizer steps, from factor 0 at step 0 to 1 at this step; applies to
  /// every kind. -1 = derive it from `warmup_ratio`. Default -1.
  int64_t warmup_steps = -1;
  /// Warmup as a fraction of the total steps, used when warmup_steps is -1, in [0, 1]. The step count
  /// is int(warmup_ratio * total_steps) evaluated in double precision and truncated toward zero, as
  /// Python's int(): 0.1 * 25 -> 2, and 0.29 * 100 (= 28.999999999999996) -> 28. Default 0.
  double warmup_ratio = 0.0;
  /// "step" kind: steps between multiplications by gamma, >= 1. Default 1000.
  int64_t step_size = 1000;
  /// "step" kind: multiplier applied every step_size steps, in (0, 1]. Default 0.1.
  double gamma = 0.1;
};

/// Throws ConfigError naming the field and the value, e.g.
/// "schedule.warmup_ratio must be in [0, 1], got 1.5".
void validate(const ScheduleOptions& options);

/// The warmup length `options` gives for `total_steps` (see ScheduleOptions::warmup_ratio).
/// Throws ConfigError when it exceeds total_steps.
[[nodiscard]] int64_t resolve_warmup_steps(const ScheduleOptions& options, int64_t total_steps);

/// Linear warmup factor step / max(1, warmup) for step < warmup; 1 afterwards.
[[nodiscard]] double warmup_factor(int64_t step, int64_t warmup);

/// A learning-rate schedule over optimizer steps. Not thread-safe; one per optimizer.
class LrSchedule {
 public:
  explicit LrSchedule(double base_lr) : base_lr_(base_lr) {}
  virtual ~LrSchedule() = default;
  LrSchedule(const LrSchedule&) = delete;
  LrSchedule& operator=(const LrSchedule&) = delete;

  /// Advances to the next optimizer step.
  void step() { ++step_; }
  /// Optimizer steps taken so far (0 after construction).
  [[nodiscard]] int64_t step_count() const { return step_; }
  /// Learning rate for the current step: base_lr() * factor(step_count()).
  [[nodiscard]] double lr() const { return base_lr_ * factor(step_); }
  [[nodiscard]] double base_lr() const { return base_lr_; }
  /// Multiplier on the base learning rate at `step` (>= 0); pure.
  [[nodiscard]] virtual double factor(int64_t step) const = 0;
  /// The kind name ScheduleOptions::kind uses for this schedule.
  [[nodiscard]] virtual std::string kind() const = 0;

  /// {"kind": ..., "step": ...}: everything a checkpoint needs to resume the schedule.
  [[nodiscard]] nlohmann::json state() const;
  /// Restores state(). Throws ConfigError when the kind differs from this schedule's, ArtifactError
  /// when the object is malformed (missing "step" or a negative one).
  void load_state(const nlohmann::json& state);

 private:
  double base_lr_;
  int64_t step_ = 0;
};

/// factor = warmup_factor(step, warmup).
class ConstantSchedule : public LrSchedule {
 public:
  ConstantSchedule(double base_lr, int64_t warmup_steps);
  [[nodiscard]] double factor(int64_t step) const override;
  [[nodiscard]] std::string kind() const override { return "constant"; }

 private:
  int64_t warmup_;
};

/// step < warmup: step / max(1, warmup); otherwise, with progress = (step - warmup) /
/// max(1, total - warmup): max(0, 0.5 * (1 + cos(pi * progress))). Past total_steps the formula is
/// still evaluated as written (the cosine rises again), exactly as LambdaLR with this lambda.
class WarmupCosineSchedule : public LrSchedule {
 public:
  WarmupCosineSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps);
  [[nodiscard]] double factor(int64_t step) const override;
  [[nodiscard]] std::string kind() const override { return "warmup_cosine"; }

 private:
  int64_t warmup_;
  int64_t total_;
};

/// step < warmup: step / max(1, warmup); otherwise max(0, (total - step) / max(1, total - warmup)).
class LinearSchedule : public LrSchedule {
 public:
  LinearSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps);
  [[nodiscard]] double factor(int64_t step) const override;
  [[nodiscard]] std::string kind() const override { return "linear"; }

 private:
  int64_t warmup_;
  int64_t total_;
};

/// step < warmup: step / max(1, warmup); otherwise gamma ^ floor((step - warmup) / step_size).
/// With warmup 0 this is torch.optim.lr_scheduler.StepLR.
class StepSchedule : public LrSchedule {
 public:
  StepSchedule(double base_lr, int64_t warmup_steps, int64_t step_size, double gamma);
  [[nodiscard]] double factor(int64_t step) const override;
  [[nodiscard]] std::string kind() const override { return "step"; }

 private:
  int64_t warmup_;
  int64_t step_size_;
  double gamma_;
};

/// Validates `options`, `base_lr` (> 0) and `total_steps` (>= 1) and builds the schedule.
/// Throws ConfigError.
[[nodiscard]] std::unique_ptr<LrSchedule> make_schedule(const ScheduleOptions& options, double base_lr,
                                                        int64_t total_steps);

}  // namespace kiln::train
