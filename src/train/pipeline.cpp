#include "kiln/train/pipeline.h"

#include <chrono>
#include <map>
#include <set>

#include "kiln/core/error.h"

namespace kiln::train {
namespace {

struct Encoded {
  std::vector<std::string> texts;
  std::vector<int64_t> y;
};

Encoded encode(const data::Dataset& ds, const std::map<std::string, int64_t>& ids, const char* name,
               std::vector<std::string>& warnings) {
  Encoded e;
  std::map<std::string, int64_t> unknown;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    auto it = ids.find(ds.labels[i]);
    if (it == ids.end()) {
      ++unknown[ds.labels[i]];
      continue;
    }
    e.texts.push_back(ds.texts[i]);
    e.y.push_back(it->second);
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto& [l, c] : unknown) list += (list.empty() ? "" : ", ") + l + " (" + std::to_string(c) + ")";
    warnings.push_back(std::string(name) + ": skipped rows whose label does not occur in the training set: " + list);
  }
  return e;
}

SparseRowsView view_of(const text::CsrMatrix<float>& m, std::vector<int64_t>& indices64) {
  indices64.assign(m.indices.begin(), m.indices.end());
  SparseRowsView v;
  v.indptr = m.indptr.data();
  v.indices = indices64.data();
  v.values = m.data.data();
  v.rows = m.rows;
  v.cols = m.cols;
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PipelineResult run_pipeline(const RunConfig& config, const data::Dataset& train, const data::Dataset* val,
                            const data::Dataset* test, const TrainerCallbacks& callbacks) {
  validate(config.trainer);
  PipelineResult r;
  std::set<std::string> label_set(train.labels.begin(), train.labels.end());
  if (label_set.size() < 2) {
    throw DataError("the training set has " + std::to_string(label_set.size()) +
                    " distinct label(s); a classifier needs at least 2 — check --label-col and the label filter");
  }
  r.labels.assign(label_set.begin(), label_set.end());
  std::map<std::string, int64_t> ids;
  for (std::size_t i = 0; i < r.labels.size(); ++i) ids[r.labels[i]] = static_cast<int64_t>(i);
  const auto num_classes = static_cast<int64_t>(r.labels.size());

  auto t0 = std::chrono::steady_clock::now();
  r.featurizer = text::make_featurizer(config.featurizer);
  Encoded tr = encode(train, ids, "training set", r.warnings);
  r.featurizer->fit(tr.texts);
  r.train_features = r.featurizer->transform(tr.texts);
  Encoded va, te;
  text::CsrMatrix<float> val_x, test_x;
  if (val && val->size() > 0) {
    va = encode(*val, ids, "validation set", r.warnings);
    val_x = r.featurizer->transform(va.texts);
    r.has_val = !va.y.empty();
  }
  if (test && test->size() > 0) {
    te = encode(*test, ids, "test set", r.warnings);
    test_x = r.featurizer->transform(te.texts);
    r.has_test = !te.y.empty();
  }
  r.featurize_seconds = seconds_since(t0);

  torch::manual_seed(config.trainer.seed);
  r.model_spec = nn::resolve_spec(config.model);
  r.model = nn::make_model(r.model_spec, r.featurizer->dim(), num_classes);

  std::vector<int64_t> tr_idx, va_idx, te_idx;
  LabeledRows train_rows{view_of(r.train_features, tr_idx), tr.y};
  LabeledRows val_rows;
  if (r.has_val) val_rows = LabeledRows{view_of(val_x, va_idx), va.y};
  t0 = std::chrono::steady_clock::now();
  r.train = train_model(*r.model, train_rows, r.has_val ? &val_rows : nullptr, num_classes, config.trainer, callbacks);
  r.train_seconds = seconds_since(t0);
  r.model->to(torch::kCPU);
  r.model->eval();

  auto evaluate = [&](const SparseRowsView& x, const std::vector<int64_t>& y) {
    auto probs = predict_proba(*r.model, x);
    return compute_metrics_from_proba(y, probs, num_classes);
  };
  if (r.has_val) r.val_metrics = evaluate(val_rows.x, va.y);
  if (r.has_test) r.test_metrics = evaluate(view_of(test_x, te_idx), te.y);
  return r;
}

}  // namespace kiln::train
