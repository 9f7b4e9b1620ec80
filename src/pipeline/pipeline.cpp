#include "kiln/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "kiln/artifact/profile.h"
#include "kiln/core/error.h"
#include "kiln/train/calibration.h"
#include "kiln/train/data_parallel.h"
#include "kiln/train/losses.h"
#include "stages.h"

namespace kiln::pipeline {
namespace {


// Up to kMaxHeldOut examples of the validation split, drawn with the run's seed, in split order.
data::Dataset sample_heldout(const data::Dataset& val, uint64_t seed) {
  if (val.size() <= kMaxHeldOut) return val;
  std::vector<std::size_t> ids(val.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  ids.resize(kMaxHeldOut);
  std::sort(ids.begin(), ids.end());
  return val.select(ids);
}

// Temperature scaling fitted on the validation split's logits, with NLL and ECE before and after.
nlohmann::json fit_calibration(const artifact::Predictor& predictor, const train::LabeledBatch& val, int64_t classes,
                               int64_t chunk) {
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < val.x.size(); start += chunk) {
    parts.push_back(predictor.forward(val.x.slice(start, std::min(chunk, val.x.size() - start))).to(torch::kCPU));
  }
  const auto logits = torch::cat(parts, 0).to(torch::kFloat64);
  const auto fit = train::fit_temperature(logits, val.y);
  if (fit.separable) {
    return {{"method", "none"},
            {"reason", "every validation example is classified correctly with a margin, so the validation log loss "
                       "has no finite optimum in the temperature; probabilities are left as the model gives them"}};
  }
  auto ece = [&](const torch::Tensor& probs) {
    const auto m = train::compute_metrics_from_proba(val.y, probs, classes);
    return m.ece ? nlohmann::json(*m.ece) : nlohmann::json();
  };
  return {{"method", "temperature"},
          {"temperature", fit.temperature},
          {"fitted_on", "validation split"},
          {"examples", val.x.size()},
          {"nll_before", fit.nll_before},
          {"nll_after", fit.nll_after},
          {"ece_before", ece(torch::softmax(logits, 1))},
          {"ece_after", ece(torch::softmax(logits / fit.temperature, 1))}};
}

}  // namespace

Encoded encode_splits(const Setup& s, const data::Dataset* val) {
  const auto t0 = std::chrono::steady_clock::now();
  const Encoder encode = s.encode ? s.encode : [](const prep::Preprocessors& p, const data::Examples& x) {
    return prep::encode_all(p, x);
  };
  Encoded e;
  e.train = train::LabeledBatch{s.fitted_train && !s.encode ? *s.fitted_train : encode(s.preprocessors, s.train.rows),
                                s.train.y, {}};
  if (prep::any_augments(s.preprocessors)) {
    e.train.augment = [pre = s.preprocessors](const nn::Batch& b) { return prep::augment_all(pre, b); };
  }
  if (val && val->size() > 0) {
    e.val_rows = keep_known_labels(*val, s.labels, "validation set");
    if (!e.val_rows.warning.empty()) e.warnings.push_back(e.val_rows.warning);
    e.has_val = e.val_rows.rows.size() > 0;
    if (e.has_val) e.val = train::LabeledBatch{encode(s.preprocessors, e.val_rows.rows), e.val_rows.y, {}};
  }
  e.seconds = seconds_since(t0);
  return e;
}

Setup fit_setup(const train::RunConfig& config, const data::Dataset& train, const std::vector<std::string>& labels) {
  Setup s;
  s.config = config;
  s.labels = labels;
  s.train = keep_known_labels(train, s.labels, "training set");
  nn::PretrainedStart start;
  if (!config.init.empty()) {
    // The pretrained directory fixes the model's size and the featurizer's vocabulary (in a list of
    // featurizers, one per modality, the one of the type it needs: multimodal's wordpiece).
    start = nn::pretrained_start(config.model, config.init);
    s.config.model.params = start.params;
    const auto want = start.featurizer.value("type", std::string());
    nlohmann::json* target = nullptr;
    std::string have;
    std::vector<nlohmann::json*> featurizers;
    if (s.config.featurizer.is_array()) {
      for (auto& f : s.config.featurizer) featurizers.push_back(&f);
    } else {
      featurizers.push_back(&s.config.featurizer);
    }
    for (auto* f : featurizers) {
      const auto type = f->value("type", std::string());
      have += (have.empty() ? "'" : ", '") + type + "'";
      if (type == want && !target) target = f;
    }
    if (!target) {
      throw ConfigError("--init " + config.init + " needs the " + want + " featurizer, but the run's featurizer is " + have +
                        "; drop the featurizer section or set featurizer.type: " + want);
    }
    if (target->contains("vocab") && !(*target)["vocab"].is_null() && start.featurizer.contains("vocab")) {
      throw ConfigError("featurizer.vocab (--vocab " + (*target)["vocab"].get<std::string>() +
                        ") conflicts with --init " + config.init + ", which brings its own vocabulary (" +
                        start.featurizer["vocab"].get<std::string>() + "); drop --vocab");
    }
    target->merge_patch(start.featurizer);
    s.lineage = {{"init", config.init}};
  }
  // One preprocessor, or a list of them (one per modality: text + image).
  const std::vector<nlohmann::json> specs =
      s.config.featurizer.is_array() ? s.config.featurizer.get<std::vector<nlohmann::json>>()
                                     : std::vector<nlohmann::json>{s.config.featurizer};
  nn::Batch fitted(static_cast<int64_t>(s.train.rows.size()));
  for (const auto& spec : specs) {
    std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor(spec);
    nn::Batch part = pre->fit_encode(s.train.rows);
    if (specs.size() == 1) {
      fitted = std::move(part);
    } else {
      for (const auto& [name, t] : part.tensors()) fitted.set(name, t);  // as prep::encode_all
    }
    s.preprocessors.push_back(pre);
  }
  s.fitted_train = std::move(fitted);
  torch::manual_seed(config.trainer.seed);
  s.model_spec = nn::resolve_spec(s.config.model);
  s.model = nn::make_model(s.model_spec, prep::combined_input_spec(s.preprocessors), static_cast<int64_t>(s.labels.size()));
  if (start.load_weights) s.warnings = start.load_weights(*s.model);
  return s;
}

std::vector<std::string> training_labels(const data::Dataset& train) {
  std::set<std::string> label_set(train.labels.begin(), train.labels.end());
  if (label_set.size() < 2) {
    throw DataError("the training set has " + std::to_string(label_set.size()) +
                    " distinct label(s); a classifier needs at least 2 — check --label-col and the label filter");
  }
  return {label_set.begin(), label_set.end()};
}

PipelineResult assemble(Setup s, Encoded e, train::TrainResult trained, double featurize_seconds, double train_seconds,
                        const data::Dataset* test, std::vector<std::string> warnings) {
  PipelineResult r;
  r.warnings = std::move(warnings);
  r.warnings.insert(r.warnings.end(), e.warnings.begin(), e.warnings.end());
  r.has_val = e.has_val;
  r.train = std::move(trained);
  r.featurize_seconds = featurize_seconds;
  r.train_seconds = train_seconds;
  const auto num_classes = static_cast<int64_t>(s.labels.size());
  s.model->to(torch::kCPU);
  s.model->eval();

  artifact::Manifest& m = r.artifact.manifest;
  m.labels = s.labels;
  m.model = s.model_spec;
  m.inputs = prep::combined_input_spec(s.preprocessors);
  for (const auto& p : s.preprocessors) m.preprocessors.push_back({p->spec(), {}});
  m.training = train::to_json(s.config);
  m.training["best_epoch"] = r.train.best_epoch;
  m.training["epochs_run"] = r.train.history.size();
  m.training["train_seconds"] = r.train_seconds;
  if (r.train.threads > 0) m.training["train_threads"] = r.train.threads;
  m.training["featurize_seconds"] = r.featurize_seconds;
  m.training["train_rows"] = s.train.rows.size();
  m.data_profile = artifact::compute_data_profile(s.train.rows, *s.preprocessors.front(), e.train.x);
  m.lineage = s.lineage;
  r.artifact.preprocessors = s.preprocessors;
  r.artifact.model = s.model;

  // Forward passes after training hold no more rows than the trainer's validation did, so they never
  // raise the job's peak memory above the training steps' (kiln plan's estimate).
  artifact::PredictorOptions po;
  po.batch_size = train::eval_chunk(s.config.trainer.batch_size);
  if (s.config.trainer.calibrate == "temperature" && r.has_val) {
    m.calibration = fit_calibration(artifact::Predictor(r.artifact, po), e.val, num_classes, po.batch_size);
  }
  // Validation and test metrics through the Predictor: the numbers kiln evaluate prints.
  const artifact::Predictor predictor(r.artifact, po);
  nlohmann::json metrics = nlohmann::json::object();
  if (r.has_val) {
    r.val_metrics = evaluate(predictor, e.val_rows.rows, "validation set").metrics;
    metrics["validation"] = train::to_json(r.val_metrics, s.labels);
    r.heldout = sample_heldout(e.val_rows.rows, s.config.trainer.seed);
  }
  if (test && test->size() > 0) {
    const KnownLabels te = keep_known_labels(*test, s.labels, "test set");
    if (!te.warning.empty()) r.warnings.push_back(te.warning);
    if (te.rows.size() > 0) {
      r.has_test = true;
      r.test_metrics = evaluate(predictor, te.rows, "test set").metrics;
      metrics["test"] = train::to_json(r.test_metrics, s.labels);
    }
  }
  m.metrics = metrics;
  return r;
}

namespace {

PipelineResult finish(Setup s, const data::Dataset* val, const data::Dataset* test,
                      const train::TrainerCallbacks& callbacks, std::chrono::steady_clock::time_point t0,
                      std::vector<std::string> warnings) {
  Encoded e = encode_splits(s, val);
  const double featurize_seconds = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  auto trained = train::train_model(*s.model, e.train, e.has_val ? &e.val : nullptr,
                                    static_cast<int64_t>(s.labels.size()), s.config.trainer, callbacks);
  const double train_seconds = seconds_since(t1);
  if (callbacks.parallel && callbacks.parallel->rank() > 0) {
    // A data-parallel rank other than 0 only helped train: rank 0 assembles and saves the artifact.
    PipelineResult r;
    r.train = std::move(trained);
    r.train_seconds = train_seconds;
    return r;
  }
  return assemble(std::move(s), std::move(e), std::move(trained), featurize_seconds, train_seconds, test,
                  std::move(warnings));
}

}  // namespace

KnownLabels keep_known_labels(const data::Dataset& ds, const std::vector<std::string>& labels, const std::string& name) {
  std::map<std::string, int64_t> ids;
  for (std::size_t i = 0; i < labels.size(); ++i) ids[labels[i]] = static_cast<int64_t>(i);
  KnownLabels out;
  std::vector<std::size_t> keep;
  std::map<std::string, int64_t> unknown;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    const auto it = ids.find(ds.labels[i]);
    if (it == ids.end()) {
      ++unknown[ds.labels[i]];
      continue;
    }
    keep.push_back(i);
    out.y.push_back(it->second);
  }
  out.rows = keep.size() == ds.size() ? ds : ds.select(keep);
  out.rows.base_dir = ds.base_dir;
  if (!unknown.empty()) {
    std::string list;
    for (const auto& [l, c] : unknown) list += (list.empty() ? "" : ", ") + l + " (" + std::to_string(c) + ")";
    out.warning = name + ": skipped rows whose label the model does not know: " + list;
  }
  return out;
}

Evaluation evaluate(const artifact::Predictor& predictor, const data::Dataset& ds, const std::string& name) {
  const auto& labels = predictor.labels();
  const KnownLabels known = keep_known_labels(ds, labels, name);
  if (known.rows.size() == 0) {
    throw DataError(name + ": no row has a label the model knows (" + std::to_string(labels.size()) + " labels, e.g. '" +
                    labels[0] + "'); check --label-col and that the file matches the model");
  }
  Evaluation e;
  e.warning = known.warning;
  const auto probs = predictor.predict_proba(known.rows);
  e.metrics = train::compute_metrics_from_proba(known.y, probs, static_cast<int64_t>(labels.size()));
  return e;
}

PipelineResult run_pipeline(const train::RunConfig& config, const data::Dataset& train, const data::Dataset* val,
                            const data::Dataset* test, const train::TrainerCallbacks& callbacks) {
  train::validate(config.trainer);
  const auto labels = training_labels(train);
  const auto t0 = std::chrono::steady_clock::now();
  Setup s = fit_setup(config, train, labels);
  auto warnings = s.warnings;
  return finish(std::move(s), val, test, callbacks, t0, std::move(warnings));
}

PipelineResult warm_start(const artifact::Artifact& parent, const train::RunConfig& config, const data::Dataset& train,
                          const data::Dataset* val, const data::Dataset* test, const train::TrainerCallbacks& callbacks,
                          const Encoder& encode) {
  train::validate(config.trainer);
  if (!parent.model || parent.preprocessors.empty()) throw ConfigError("warm start: the parent artifact has no model");
  Setup s;
  s.config = config;
  s.labels = parent.manifest.labels;
  s.model_spec = parent.manifest.model;
  s.config.model = parent.manifest.model;
  if (parent.preprocessors.size() == 1) {
    s.config.featurizer = parent.preprocessors.front()->spec();
  } else {
    s.config.featurizer = nlohmann::json::array();
    for (const auto& p : parent.preprocessors) s.config.featurizer.push_back(p->spec());
  }
  s.preprocessors = parent.preprocessors;
  s.encode = encode;
  const auto t0 = std::chrono::steady_clock::now();
  s.train = keep_known_labels(train, s.labels, "training set");
  std::vector<std::string> warnings;
  if (!s.train.warning.empty()) warnings.push_back(s.train.warning);
  if (s.train.rows.size() == 0) {
    throw DataError("warm start: no training row has a label the model knows (" + std::to_string(s.labels.size()) +
                    " labels, e.g. '" + s.labels[0] + "'); new labels need a new model (kiln train)");
  }
  // New data often lacks some of the parent's classes: balance over the classes it has (an absent
  // class is never a target, so its weight changes nothing).
  if (s.config.trainer.loss.class_weight == "balanced") {
    std::vector<int64_t> counts(s.labels.size(), 0);
    for (int64_t c : s.train.y) ++counts[static_cast<std::size_t>(c)];
    std::vector<std::size_t> present;
    std::string absent;
    for (std::size_t c = 0; c < counts.size(); ++c) {
      if (counts[c] > 0) present.push_back(c);
      else absent += (absent.empty() ? "" : ", ") + s.labels[c];
    }
    if (!absent.empty()) {
      std::vector<int64_t> present_counts;
      for (auto c : present) present_counts.push_back(counts[c]);
      const auto w = train::balanced_class_weights(present_counts);
      s.config.trainer.loss.class_weight = "explicit";
      s.config.trainer.loss.class_weights.assign(s.labels.size(), 1.0);
      for (std::size_t i = 0; i < present.size(); ++i) s.config.trainer.loss.class_weights[present[i]] = w[i];
      warnings.push_back("warm start: the new training rows have no examples of " + absent +
                         "; class weights are balanced over the " + std::to_string(present.size()) + " classes present");
    }
  }
  s.model = nn::make_model(s.model_spec, parent.manifest.inputs, static_cast<int64_t>(s.labels.size()));
  {
    torch::NoGradGuard no_grad;
    auto from = parent.model->named_parameters();
    for (auto& p : s.model->named_parameters()) p.value().copy_(from[p.key()].to(torch::kCPU));
    auto from_buffers = parent.model->named_buffers();
    for (auto& b : s.model->named_buffers()) b.value().copy_(from_buffers[b.key()].to(torch::kCPU));
  }
  s.lineage = {{"warm_start", true},
               {"parent", {{"dir", parent.dir},
                           {"created_at", parent.manifest.created_at},
                           {"kiln_version", parent.manifest.kiln_version}}}};
  return finish(std::move(s), val, test, callbacks, t0, std::move(warnings));
}

void save(const PipelineResult& result, const std::string& dir) {
  artifact::save_artifact(dir, result.artifact.manifest, result.artifact.preprocessors, *result.artifact.model,
                          &result.heldout);
}

}  // namespace kiln::pipeline
