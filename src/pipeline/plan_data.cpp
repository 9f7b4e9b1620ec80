// What a training job on a data file holds and feeds, for `kiln plan --data` (kiln/pipeline/plan_data.h).
#include "kiln/pipeline/plan_data.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kiln/artifact/artifact.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/core/process_memory.h"
#include "kiln/data/dataset.h"
#include "kiln/pipeline/pipeline.h"
#include "kiln/prep/preprocessor.h"
#include "stages.h"

namespace kiln::pipeline {
namespace {

/// Kiln's and LibTorch's threads at `n` until it goes out of scope.
struct ThreadsScope {
  int saved = core::threads();
  explicit ThreadsScope(int n) {
    core::set_threads(n);
    at::set_num_threads(n);
  }
  ~ThreadsScope() {
    core::set_threads(saved);
    at::set_num_threads(saved);
  }
};

}  // namespace

nlohmann::json profile_plan_data(const nlohmann::json& request) {
  const std::string dir = request.at("artifact").get<std::string>();
  const std::string file = request.at("data").get<std::string>();
  const int64_t batch = std::max<int64_t>(1, request.value("batch", int64_t{32}));
  const int threads = std::max(1, request.value("threads", 1));
  const std::string manifest_path = dir + "/kiln.json";
  std::ifstream in(manifest_path);
  if (!in) throw ArtifactError(manifest_path + ": missing; --data needs --model to name an artifact directory");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw ArtifactError(manifest_path + ": not valid JSON; re-save the artifact with kiln train");
  }
  const artifact::Manifest manifest = artifact::manifest_from_json(j, manifest_path);

  data::LoadOptions lo;
  const auto& d = manifest.training.is_object() ? manifest.training.value("data", nlohmann::json::object())
                                                : nlohmann::json::object();
  if (d.is_object()) {
    if (d.contains("text_col") && d["text_col"].is_string()) lo.text_col = d["text_col"].get<std::string>();
    if (d.contains("image_col") && d["image_col"].is_string()) lo.image_col = d["image_col"].get<std::string>();
    if (d.contains("label_col") && d["label_col"].is_string()) lo.label_col = d["label_col"].get<std::string>();
  }

  ThreadsScope scope(threads);
  const double before = core::process_status_bytes("VmRSS:");
  const bool peak_known = core::reset_peak_resident();
  data::DataReport report;
  const data::Dataset ds = data::load_labeled(file, lo, &report);
  if (ds.size() == 0) throw DataError(file + ": no rows with a text and a label to plan on; check the columns");
  // As the pipeline holds them (fit_setup, encode_splits): the rows with known labels copied out,
  // the preprocessors fitted on them, the rows encoded.
  const KnownLabels known = keep_known_labels(ds, training_labels(ds), "training set");
  prep::Preprocessors preprocessors;
  for (const auto& entry : manifest.preprocessors) {
    std::shared_ptr<prep::Preprocessor> p = prep::make_preprocessor(entry.spec);
    p->fit(known.rows);
    preprocessors.push_back(p);
  }
  const nn::Batch encoded = prep::encode_all(preprocessors, known.rows);
  const double peak = peak_known ? std::max(0.0, core::process_status_bytes("VmHWM:") - before) : 0.0;
  // Still resident with the rows and their encoding alive: what the run keeps (glibc keeps the
  // fit's freed blocks mapped too, and training allocates into them).
  const double kept = peak_known ? std::min(peak, std::max(0.0, core::process_status_bytes("VmRSS:") - before)) : 0.0;

  nlohmann::json answer = {{"samples", static_cast<int64_t>(ds.size())},
                           {"peak_bytes", peak},
                           {"kept_bytes", kept},
                           {"runtime_bytes", before},
                           {"source", peak_known ? "reading " + file + ", fitting and encoding it here at " +
                                                       std::to_string(threads) + " thread(s): the resident set's rise"
                                                 : "not measured (/proc/self/clear_refs not writable)"}};
  for (const nn::Batch& b : {encoded}) {
    if (!b.has("bag_indices") || !b.has("bag_offsets")) continue;
    const auto idx = b.at("bag_indices").contiguous();
    const auto off = b.at("bag_offsets").contiguous();
    const int64_t rows = off.numel(), nnz = idx.numel();
    const int64_t* ip = idx.data_ptr<int64_t>();
    const int64_t* op = off.data_ptr<int64_t>();
    answer["seq_len"] = static_cast<double>(nnz) / static_cast<double>(rows);
    std::vector<int64_t> order(static_cast<std::size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
    double distinct_sum = 0;
    int64_t batches = 0;
    std::vector<int64_t> ids;
    for (int64_t s = 0; s + batch <= rows || (s == 0 && rows > 0); s += batch) {
      ids.clear();
      for (int64_t k = s; k < std::min(rows, s + batch); ++k) {
        const int64_t r = order[static_cast<std::size_t>(k)];
        const int64_t end = r + 1 < rows ? op[r + 1] : nnz;
        ids.insert(ids.end(), ip + op[r], ip + end);
      }
      std::sort(ids.begin(), ids.end());
      distinct_sum += static_cast<double>(std::unique(ids.begin(), ids.end()) - ids.begin());
      ++batches;
    }
    answer["rows_per_batch"] = distinct_sum / static_cast<double>(batches);
    break;
  }
  return answer;
}

}  // namespace kiln::pipeline
