#include "kiln/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/core/format.h"

namespace kiln::train {

namespace {

constexpr double kPi = 3.14159265358979323846;

[[noreturn]] void schedule_fail(const std::string& field, const std::string& rule, const std::string& got) {
  throw ConfigError("schedule." + field + " must be " + rule + ", got " + got);
}

double ratio(int64_t a, int64_t b) { return static_cast<double>(a) / static_cast<double>(std::max<int64_t>(1, b)); }

}  // namespace

void validate(const ScheduleOptions& o) {
  if (o.kind != "constant" && o.kind != "warmup_cosine" && o.kind != "linear" && o.kind != "step") {
    schedule_fail("kind", "one of constant, warmup_cosine, linear, step", "'" + o.kind + "'");
  }
  if (o.warmup_steps < -1) schedule_fail("warmup_steps", ">= 0 (or -1 to use warmup_ratio)", std::to_string(o.warmup_steps));
  if (!(o.warmup_ratio >= 0.0 && o.warmup_ratio <= 1.0)) schedule_fail("warmup_ratio", "in [0, 1]", core::format_number(o.warmup_ratio));
  if (o.warmup_steps >= 0 && o.warmup_ratio != 0.0) {
    throw ConfigError("schedule.warmup_steps (" + std::to_string(o.warmup_steps) + ") and schedule.warmup_ratio (" +
                      core::format_number(o.warmup_ratio) + ") are both set; set only one (warmup_steps -1 uses the ratio)");
  }
  if (o.step_size < 1) schedule_fail("step_size", ">= 1", std::to_string(o.step_size));
  if (!(o.gamma > 0.0 && o.gamma <= 1.0)) schedule_fail("gamma", "in (0, 1]", core::format_number(o.gamma));
}

int64_t resolve_warmup_steps(const ScheduleOptions& o, int64_t total_steps) {
  const int64_t warmup =
      o.warmup_steps >= 0 ? o.warmup_steps : static_cast<int64_t>(o.warmup_ratio * static_cast<double>(total_steps));
  if (warmup > total_steps) {
    throw ConfigError("schedule.warmup_steps (" + std::to_string(warmup) + ") exceeds the " +
                      std::to_string(total_steps) + " total training steps; lower it or train for more epochs");
  }
  return warmup;
}

double warmup_factor(int64_t step, int64_t warmup) { return step < warmup ? ratio(step, warmup) : 1.0; }

nlohmann::json LrSchedule::state() const { return {{"kind", kind()}, {"step", step_}}; }

void LrSchedule::load_state(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("step") || !state.at("step").is_number_integer() ||
      state.at("step").get<int64_t>() < 0) {
    throw ArtifactError("learning-rate schedule state must be an object with a non-negative integer \"step\", got " +
                        state.dump());
  }
  if (state.contains("kind") && state.at("kind") != kind()) {
    const auto& k = state.at("kind");
    throw ConfigError("schedule.kind is '" + kind() + "' but the checkpoint was trained with " +
                      (k.is_string() ? "'" + k.get<std::string>() + "'" : k.dump()) +
                      "; resume with the same schedule or start a new run");
  }
  step_ = state.at("step").get<int64_t>();
}

ConstantSchedule::ConstantSchedule(double base_lr, int64_t warmup_steps) : LrSchedule(base_lr), warmup_(warmup_steps) {}

double ConstantSchedule::factor(int64_t step) const { return warmup_factor(step, warmup_); }

WarmupCosineSchedule::WarmupCosineSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps)
    : LrSchedule(base_lr), warmup_(warmup_steps), total_(total_steps) {}

double WarmupCosineSchedule::factor(int64_t step) const {
  if (step < warmup_) return ratio(step, warmup_);
  const double progress = ratio(step - warmup_, total_ - warmup_);
  return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * progress)));
}

LinearSchedule::LinearSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps)
    : LrSchedule(base_lr), warmup_(warmup_steps), total_(total_steps) {}

double LinearSchedule::factor(int64_t step) const {
  if (step < warmup_) return ratio(step, warmup_);
  return std::max(0.0, ratio(total_ - step, total_ - warmup_));
}

StepSchedule::StepSchedule(double base_lr, int64_t warmup_steps, int64_t step_size, double gamma)
    : LrSchedule(base_lr), warmup_(warmup_steps), step_size_(step_size), gamma_(gamma) {}

double StepSchedule::factor(int64_t step) const {
  if (step < warmup_) return ratio(step, warmup_);
  return std::pow(gamma_, static_cast<double>((step - warmup_) / step_size_));
}

std::unique_ptr<LrSchedule> make_schedule(const ScheduleOptions& options, double base_lr, int64_t total_steps) {
  validate(options);
  if (!(base_lr > 0.0) || !std::isfinite(base_lr)) {
    throw ConfigError("optimizer.lr must be > 0, got " + core::format_number(base_lr));
  }
  if (total_steps < 1) {
    throw ConfigError("schedule: total training steps must be >= 1, got " + std::to_string(total_steps));
  }
  const int64_t warmup = resolve_warmup_steps(options, total_steps);
  if (options.kind == "constant") return std::make_unique<ConstantSchedule>(base_lr, warmup);
  if (options.kind == "warmup_cosine") return std::make_unique<WarmupCosineSchedule>(base_lr, warmup, total_steps);
  if (options.kind == "linear") return std::make_unique<LinearSchedule>(base_lr, warmup, total_steps);
  return std::make_unique<StepSchedule>(base_lr, warmup, options.step_size, options.gamma);
}

}  // namespace kiln::train
