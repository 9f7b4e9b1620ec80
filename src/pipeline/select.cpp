#include "kiln/pipeline/select.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "kiln/core/error.h"
#include "kiln/data/stratified_split.h"
#include "kiln/nn/ensemble.h"
#include "kiln/prep/ensemble.h"
#include "kiln/train/calibration.h"
#include "kiln/tune/hyperband_pruner.h"
#include "stages.h"

namespace kiln::pipeline {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string percent(double share) {
  char b[32];
  std::snprintf(b, sizeof b, "%g%%", share * 100);
  return b;
}


// A candidate's trained state, kept while it is the best so far.
struct Trained {
  Setup setup;
  Encoded encoded;
  train::TrainResult result;
  double featurize_seconds = 0, train_seconds = 0;
  std::size_t index = 0;
};

// Logits of `model` on `x` [examples, classes], float64 on the CPU (InferenceMode, eval mode).
torch::Tensor logits_of(nn::Model& model, const nn::Batch& x, int64_t chunk) {
  const torch::InferenceMode guard;
  model.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < x.size(); start += chunk) {
    parts.push_back(model.forward(x.slice(start, std::min(chunk, x.size() - start))).to(torch::kCPU));
  }
  return torch::cat(parts, 0).to(torch::kFloat64);
}

// A member's own temperature on the validation split (1 when the split is separable).
double member_temperature(const torch::Tensor& logits, const std::vector<int64_t>& y) {
  const auto fit = train::fit_temperature(logits, y);
  return fit.separable ? 1.0 : fit.temperature;
}

// `a`'s and `b`'s tensors in one batch, each under its ensemble member prefix.
nn::Batch prefixed(const nn::Batch& a, const nn::Batch& b) {
  nn::Batch out(a.size());
  for (const auto& [name, t] : a.tensors()) out.set(prep::ensemble_member_prefix(0) + name, t);
  for (const auto& [name, t] : b.tensors()) out.set(prep::ensemble_member_prefix(1) + name, t);
  return out;
}

}  // namespace

std::vector<Candidate> default_candidates() {
  return {{"fasttext", train::preset_config("fasttext")},
          {"logreg", train::preset_config("logreg")},
          {"mlp", train::preset_config("mlp")}};
}

double default_budget(const std::vector<Candidate>& candidates) {
  double total = 0;
  for (const auto& c : candidates) total += c.config.trainer.epochs;
  return total;
}

SelectionResult select_model(const SelectionOptions& options, const data::Dataset& train, const data::Dataset* val,
                             const data::Dataset* test, const SelectionCallbacks& callbacks) {
  if (options.candidates.empty()) throw ConfigError("model selection needs at least one candidate");
  if (!(options.budget > 0) || !std::isfinite(options.budget)) {
    throw ConfigError("--budget must be a number of passes over the training set > 0, got " +
                      std::to_string(options.budget));
  }
  if (options.max_seconds < 0) throw ConfigError("--max-time must be >= 0");
  if (options.reduction_factor < 2) throw ConfigError("selection reduction_factor must be >= 2");
  if (options.min_resource_epochs < 1) throw ConfigError("selection min_resource_epochs must be >= 1");
  for (const auto& c : options.candidates) train::validate(c.config.trainer);
  const auto labels = training_labels(train);
  const auto t_start = std::chrono::steady_clock::now();

  SelectionResult out;
  out.budget = options.budget;
  // Validation: the given set, or a stratified share of the training rows.
  data::Dataset train_rows, carved;
  const data::Dataset* fit_on = &train;
  const data::Dataset* val_on = val;
  if (val && val->size() > 0) {
    out.validation = "the given validation set (" + std::to_string(val->size()) + " rows)";
  } else {
    data::SplitOptions so;
    so.test_size = options.val_share;
    so.seed = options.candidates.front().config.data.seed;
    so.rare_classes = data::RareClassPolicy::kTrainOnly;
    data::SplitResult split;
    try {
      split = data::stratified_split(train.labels, so);
    } catch (const Error& e) {
      throw DataError(std::string("model selection needs a validation split and none could be carved from the training "
                                  "rows (") + e.what() + "); give --val FILE or choose a model with --model NAME");
    }
    train_rows = train.select(split.train);
    train_rows.base_dir = train.base_dir;
    carved = train.select(split.test);
    carved.base_dir = train.base_dir;
    fit_on = &train_rows;
    val_on = &carved;
    out.validation = std::to_string(carved.size()) + " rows (" + percent(options.val_share) +
                     " of the training rows, stratified, seed " + std::to_string(so.seed) + ") held out for validation";
  }
  const double n_train = static_cast<double>(fit_on->size());

  tune::SuccessiveHalvingPrunerOptions po;
  po.min_resource = options.min_resource_epochs;
  po.reduction_factor = options.reduction_factor;
  const tune::SuccessiveHalvingPruner pruner(po);
  std::vector<tune::Trial> trials;

  std::optional<Trained> best, second;  // the two best candidates so far (the ensemble's members)
  double best_score = -1, second_score = -1;
  for (std::size_t k = 0; k < options.candidates.size(); ++k) {
    const Candidate& cand = options.candidates[k];
    CandidateReport rep;
    rep.name = cand.name;
    rep.val_macro_f1 = kNaN;
    rep.config = train::to_json(cand.config);
    if (out.work + 1.0 > options.budget + 1e-9) {
      rep.status = "skipped: budget";
      out.candidates.push_back(rep);
      if (callbacks.on_done) callbacks.on_done(rep);
      continue;
    }
    // The first candidate always starts: a cap cuts the race, it does not leave the user without a model.
    if (best && options.max_seconds > 0 && seconds_since(t_start) >= options.max_seconds) {
      rep.status = "skipped: --max-time";
      out.cut_by_time = true;
      out.candidates.push_back(rep);
      if (callbacks.on_done) callbacks.on_done(rep);
      continue;
    }
    if (callbacks.on_start) callbacks.on_start(cand);
    const auto t0 = std::chrono::steady_clock::now();
    tune::Trial trial;
    trial.id = static_cast<int64_t>(k);
    trial.number = static_cast<int64_t>(k);
    trials.push_back(trial);
    try {
      train::RunConfig cfg = cand.config;
      cfg.trainer.run_dir.clear();  // candidates keep their weights in memory; no checkpoints
      cfg.trainer.resume = false;
      Trained t;
      t.index = k;
      t.setup = fit_setup(cfg, *fit_on, labels);
      t.encoded = encode_splits(t.setup, val_on);
      t.featurize_seconds = seconds_since(t0);
      if (!t.encoded.has_val) throw DataError("the validation split has no row with a label of the training set");
      train::TrainerCallbacks cb = callbacks.trainer ? callbacks.trainer(cand) : train::TrainerCallbacks{};
      std::string stop_reason;
      cb.should_stop = [&](const train::EpochRecord& rec) {
        auto& tr = trials.back();
        tr.intermediate[rec.epoch] = rec.val_macro_f1;
        if (pruner.should_prune(trials, tr, tune::Direction::kMaximize)) {
          stop_reason = "pruned at epoch " + std::to_string(rec.epoch);
          return true;
        }
        if (out.work + (rec.epoch + 1) > options.budget + 1e-9) {
          stop_reason = "stopped: budget";
          return true;
        }
        if (options.max_seconds > 0 && seconds_since(t_start) >= options.max_seconds) {
          stop_reason = "stopped: --max-time";
          out.cut_by_time = true;
          return true;
        }
        return false;
      };
      const auto t1 = std::chrono::steady_clock::now();
      t.result = train::train_model(*t.setup.model, t.encoded.train, &t.encoded.val,
                                    static_cast<int64_t>(labels.size()), cfg.trainer, cb);
      t.train_seconds = seconds_since(t1);
      rep.epochs = static_cast<int>(t.result.history.size());
      rep.best_epoch = t.result.best_epoch;
      rep.val_macro_f1 = t.result.best_val_macro_f1;
      rep.work = rep.epochs;
      out.work += rep.work;
      rep.status = t.result.stopped_by_callback ? stop_reason : "complete";
      auto& tr = trials.back();
      tr.state = t.result.stopped_by_callback && stop_reason.rfind("pruned", 0) == 0 ? tune::TrialState::kPruned
                                                                                      : tune::TrialState::kComplete;
      tr.value = rep.val_macro_f1;
      rep.seconds = seconds_since(t0);
      if (rep.val_macro_f1 > best_score) {
        if (options.ensemble != SelectionOptions::EnsemblePolicy::kNever && best) {
          second = std::move(best);
          second_score = best_score;
        }
        best_score = rep.val_macro_f1;
        best = std::move(t);
      } else if (options.ensemble != SelectionOptions::EnsemblePolicy::kNever && rep.val_macro_f1 > second_score) {
        second_score = rep.val_macro_f1;
        second = std::move(t);
      }
    } catch (const ConfigError&) {
      throw;  // a bad candidate config is the user's to fix, not a failed candidate
    } catch (const Error& e) {
      trials.back().state = tune::TrialState::kFailed;
      rep.status = std::string("failed: ") + e.what();
      rep.seconds = seconds_since(t0);
    }
    out.candidates.push_back(rep);
    if (callbacks.on_done) callbacks.on_done(rep);
  }
  if (!best) {
    std::string why;
    for (const auto& c : out.candidates) why += (why.empty() ? "" : "; ") + c.name + ": " + c.status;
    throw Error("model selection: no candidate trained (" + why + "); raise --budget or choose one with --model NAME");
  }
  out.chosen = options.candidates[best->index].name;
  out.candidates[best->index].status = "chosen";
  (void)n_train;

  // The ensemble of the two best: each member calibrated on validation by its own temperature,
  // their probabilities averaged. It replaces the best single model when its validation macro-F1 is
  // higher; it costs no training (both members are trained already).
  std::optional<Setup> ensemble_setup;
  std::optional<Encoded> ensemble_encoded;
  nlohmann::json ensemble_record;
  if (second && best->setup.preprocessors.size() == 1 && second->setup.preprocessors.size() == 1) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto classes = static_cast<int64_t>(labels.size());
    const int64_t chunk = train::eval_chunk(best->setup.config.trainer.batch_size);
    const auto& y = best->encoded.val.y;
    const torch::Tensor la = logits_of(*best->setup.model, best->encoded.val.x, chunk);
    const torch::Tensor lb = logits_of(*second->setup.model, second->encoded.val.x, chunk);
    const double ta = member_temperature(la, y), tb = member_temperature(lb, y);
    const torch::Tensor pa = torch::softmax(la / ta, 1), pb = torch::softmax(lb / tb, 1);
    const double single = train::compute_metrics_from_proba(y, pa, classes).macro_f1;
    const double mixed = train::compute_metrics_from_proba(y, (pa + pb) * 0.5, classes).macro_f1;
    const std::string a = options.candidates[best->index].name, b = options.candidates[second->index].name;
    CandidateReport rep;
    rep.name = "ensemble";
    rep.val_macro_f1 = mixed;
    rep.epochs = 0;
    rep.config = {{"members", {a, b}}, {"temperatures", {ta, tb}}, {"weights", {0.5, 0.5}}};
    if (mixed > single || options.ensemble == SelectionOptions::EnsemblePolicy::kAlways) {
      nn::Ensemble ens = nn::make_ensemble({{best->setup.model, best->setup.model_spec, ta, 0.5},
                                            {second->setup.model, second->setup.model_spec, tb, 0.5}},
                                           classes);
      Setup s = best->setup;
      s.preprocessors = {prep::make_ensemble_preprocessor({best->setup.preprocessors[0], second->setup.preprocessors[0]})};
      s.model_spec = ens.spec;
      s.model = ens.model;
      Encoded e = best->encoded;
      e.train.x = prefixed(best->encoded.train.x, second->encoded.train.x);
      e.train.augment = {};
      e.val.x = prefixed(best->encoded.val.x, second->encoded.val.x);
      ensemble_setup = std::move(s);
      ensemble_encoded = std::move(e);
      out.candidates[best->index].status = "ensemble member";
      out.candidates[second->index].status = "ensemble member";
      rep.status = "chosen";
      out.chosen = "ensemble";
    } else {
      rep.status = "not better than " + a;
    }
    rep.seconds = seconds_since(t0);
    ensemble_record = {{"members", {a, b}},
                       {"temperatures", {ta, tb}},
                       {"weights", {0.5, 0.5}},
                       {"val_macro_f1", mixed},
                       {"best_single_val_macro_f1", single},
                       {"chosen", out.chosen == "ensemble"}};
    out.candidates.push_back(rep);
    if (callbacks.on_done) callbacks.on_done(rep);
  }

  nlohmann::json table = nlohmann::json::array();
  for (const auto& c : out.candidates) {
    table.push_back({{"name", c.name},
                     {"status", c.status},
                     {"epochs", c.epochs},
                     {"best_epoch", c.best_epoch},
                     {"val_macro_f1", std::isfinite(c.val_macro_f1) ? nlohmann::json(c.val_macro_f1) : nlohmann::json()},
                     {"work_passes", c.work},
                     {"seconds", c.seconds},
                     {"config", c.config}});
  }
  const double featurize_seconds = best->featurize_seconds + (ensemble_setup ? second->featurize_seconds : 0.0);
  const double train_seconds = best->train_seconds + (ensemble_setup ? second->train_seconds : 0.0);
  if (ensemble_setup) {
    out.result = assemble(std::move(*ensemble_setup), std::move(*ensemble_encoded), std::move(best->result),
                          featurize_seconds, train_seconds, test, {});
    auto& training = out.result.artifact.manifest.training;
    nlohmann::json members = nlohmann::json::array();
    for (const Trained* t : {&*best, &*second}) {
      members.push_back({{"candidate", options.candidates[t->index].name},
                         {"config", train::to_json(t->setup.config)},
                         {"best_epoch", t->result.best_epoch},
                         {"epochs_run", t->result.history.size()}});
    }
    training["ensemble"] = {{"members", members}};
  } else {
    out.result = assemble(std::move(best->setup), std::move(best->encoded), std::move(best->result), featurize_seconds,
                          train_seconds, test, {});
  }
  out.result.artifact.manifest.training["selection"] = {
      {"metric", "validation macro-F1"},
      {"validation", out.validation},
      {"chosen", out.chosen},
      {"budget_passes", out.budget},
      {"work_passes", out.work},
      {"cut_by_time", out.cut_by_time},
      {"pruner", {{"kind", "successive_halving"}, {"min_resource_epochs", options.min_resource_epochs}, {"reduction_factor", options.reduction_factor}}},
      {"candidates", table}};
  if (!ensemble_record.is_null()) out.result.artifact.manifest.training["selection"]["ensemble"] = ensemble_record;
  return out;
}

std::string format_selection_table(const SelectionResult& r) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-22s %6s %14s %8s %9s\n", "candidate", "status", "epochs", "val macro-F1",
                "work", "seconds");
  s += line;
  for (const auto& c : r.candidates) {
    const std::string f1 = std::isfinite(c.val_macro_f1) ? [&] {
      char b[32];
      std::snprintf(b, sizeof b, "%.4f", c.val_macro_f1);
      return std::string(b);
    }()
                                                          : std::string("-");
    std::string status = c.status;
    if (status.size() > 60) status = status.substr(0, 57) + "...";
    std::snprintf(line, sizeof line, "%-12s %-22s %6d %14s %8.1f %9.1f\n", c.name.c_str(), status.c_str(), c.epochs,
                  f1.c_str(), c.work, c.seconds);
    s += line;
  }
  std::snprintf(line, sizeof line, "work: %.1f of a budget of %.1f passes over the training set%s\n", r.work, r.budget,
                r.cut_by_time ? "; cut short by --max-time (the choice now depends on this machine's speed)" : "");
  s += line;
  return s;
}

}  // namespace kiln::pipeline
