#include "kiln/learn/learner.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <sstream>
#include <thread>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace kiln::learn {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStateFormat = "kiln-learn-state";
/// Version of state.json. Bump only with a reader for the older one.
constexpr int kStateVersion = 1;
constexpr std::size_t kRecentAccuracyWindow = 200;
/// Items predicted between two calls of UpdateOptions::yield_if when it is set.
constexpr std::size_t kYieldPiece = 32;

std::string version_name(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "v%04lld", static_cast<long long>(v));
  return buf;
}

std::string percent(double x) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << 100 * x;
  return s.str();
}

nlohmann::json read_json(const fs::path& p, const std::string& flag) {
  std::ifstream in(p);
  if (!in) throw IoError(p.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(p.string() + ": corrupt learning state (not valid JSON: " + e.what() +
                    "); restore it or start again with a new " + flag + " directory");
  }
}

}  // namespace

void validate(const LearnOptions& o) {
  validate(o.buffer);
  validate(o.update);
  validate(o.adwin);
  validate(o.page_hinkley);
  if (o.update_every < 1) throw ConfigError("--update-every must be >= 1 item, got " + std::to_string(o.update_every));
  if (!(o.gate_fraction >= 0 && o.gate_fraction < 1)) {
    throw ConfigError("--gate-fraction must be in [0, 1), got " + std::to_string(o.gate_fraction));
  }
  if (o.gate_feedback_max < 1) throw ConfigError("gate_feedback_max must be >= 1, got " + std::to_string(o.gate_feedback_max));
  if (o.recent_window < 1) throw ConfigError("recent_window must be >= 1, got " + std::to_string(o.recent_window));
  if (o.encoding_cache_bytes < 0) {
    throw ConfigError("encoding_cache_bytes must be >= 0, got " + std::to_string(o.encoding_cache_bytes));
  }
}

nlohmann::json LearnSummary::to_json() const {
  return {{"items", items},         {"online_accuracy", online_accuracy()}, {"duplicates", duplicates},
          {"updates", updates},     {"promoted", promoted},                 {"rejected", rejected},
          {"failed", failed},       {"drifts", drifts},                     {"version", version}};
}

Learner::Learner(const std::string& artifact_dir, const std::string& state_dir, LearnOptions options)
    : artifact_dir_(fs::absolute(artifact_dir).lexically_normal().string()),
      state_dir_(state_dir),
      options_(options),
      encodings_(options.encoding_cache_bytes),
      buffer_(options.buffer),
      adwin_(options.adwin),
      page_hinkley_(options.page_hinkley),
      gate_rng_(options.buffer.seed ^ 0x9e3779b97f4a7c15ULL) {
  validate(options_);
  const auto loc = artifact::locate_artifact(artifact_dir);
  artifact_dir_ = fs::absolute(loc.dir).lexically_normal().string();
  served_ = artifact::load_artifact(loc.dir);
  heldout_ = artifact::load_heldout(loc.dir);
  const fs::path dir(state_dir_);
  if (fs::exists(dir) && !fs::is_directory(dir)) {
    throw ConfigError(options_.state_flag + " " + state_dir_ + " is a file; give a directory for the learning state");
  }
  if (fs::exists(dir) && !fs::is_empty(dir) && !fs::exists(dir / "versions") && !fs::exists(dir / "state.json")) {
    throw ConfigError(options_.state_flag + " " + state_dir_ + " is not empty and holds no kiln learn state; give a new or "
                      "empty directory (an existing " + options_.state_flag + " directory is resumed)");
  }
  fs::create_directories(dir / "versions");
  // Half-written versions of a crashed run: the atomic writer's temporaries, never renamed into place.
  for (const auto& e : fs::directory_iterator(fs::path(state_dir_) / "versions")) {
    const auto name = e.path().filename().string();
    if (!name.empty() && name[0] == '.' && name.find(".tmp-") != std::string::npos) fs::remove_all(e.path());
    if (name.size() == 5 && name[0] == 'v' && name.find_first_not_of("0123456789", 1) == std::string::npos) {
      next_version_ = std::max<int64_t>(next_version_, std::stoll(name.substr(1)) + 1);
    }
  }
  if (fs::exists(fs::path(state_dir_) / "state.json")) resume();
  known_labels_.insert(served_.manifest.labels.begin(), served_.manifest.labels.end());
  predictor_ = std::make_unique<artifact::Predictor>(served_);
  // A record cut short by a crash is dropped, so every line of the curve stays one JSON object.
  const fs::path curve_path = fs::path(state_dir_) / "curve.jsonl";
  if (fs::exists(curve_path) && fs::file_size(curve_path) > 0) {
    std::ifstream in(curve_path, std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.back() != '\n') fs::resize_file(curve_path, content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1);
  }
  curve_.open(curve_path, std::ios::app);
  if (!curve_) throw IoError((fs::path(state_dir_) / "curve.jsonl").string() + ": cannot open for appending");
}

void Learner::resume() {
  const fs::path dir(state_dir_);
  const auto j = read_json(dir / "state.json", options_.state_flag);
  if (j.value("format", std::string()) != kStateFormat || j.value("version", 0) > kStateVersion) {
    throw DataError((dir / "state.json").string() + ": not a kiln learn state file of a version this Kiln reads; "
                    "use a new " + options_.state_flag + " directory");
  }
  const auto artifact = j.value("artifact", std::string());
  if (artifact != artifact_dir_) {
    throw ConfigError(state_dir_ + " holds the learning state of " + artifact + ", not of " + artifact_dir_ +
                      "; give a new " + options_.state_flag + " directory");
  }
  if (fs::exists(dir / "buffer.json")) {
    buffer_ = ReplayBuffer::load((dir / "buffer.json").string());
    const auto& b = buffer_.options();
    const auto& want = options_.buffer;
    if (b.mode != want.mode || b.capacity != want.capacity) {
      throw ConfigError((dir / "buffer.json").string() + " holds a " + to_string(b.mode) + " buffer of capacity " +
                        std::to_string(b.capacity) + ", but the flags ask for " + to_string(want.mode) + " of " +
                        std::to_string(want.capacity) + "; resume with the same --buffer and --capacity or use a new " + options_.state_flag);
    }
  }
  summary_.items = j.value("items", int64_t{0});
  summary_.correct = j.value("correct", int64_t{0});
  summary_.updates = j.value("updates", int64_t{0});
  summary_.promoted = j.value("promoted", int64_t{0});
  summary_.failed = j.value("failed", int64_t{0});
  summary_.rejected = j.value("rejected", std::map<std::string, int64_t>{});
  summary_.version = j.value("current", std::string());
  cursor_ = saved_cursor_ = j.value("cursor", int64_t{0});
  if (!summary_.version.empty()) {
    served_ = artifact::load_artifact((dir / "versions" / summary_.version).string());
  }
  say("resuming " + state_dir_ + " at " + std::to_string(summary_.items) + " items, serving " +
      (summary_.version.empty() ? "the original artifact" : summary_.version));
}

void Learner::write_state() {
  saved_cursor_ = cursor_;
  nlohmann::json j = {{"cursor", cursor_},{"format", kStateFormat},          {"version", kStateVersion},
                      {"artifact", artifact_dir_},       {"current", summary_.version},
                      {"items", summary_.items},         {"correct", summary_.correct},
                      {"updates", summary_.updates},     {"promoted", summary_.promoted},
                      {"failed", summary_.failed},       {"rejected", summary_.rejected}};
  core::write_file_atomic(fs::path(state_dir_) / "state.json", j.dump(2) + "\n");
}

void Learner::record(const nlohmann::json& j) {
  curve_ << j.dump() << "\n";
  curve_.flush();
}

void Learner::observe(const std::vector<FeedbackItem>& items) {
  std::size_t i = 0;
  while (i < items.size()) {
    // Predict up to the next possible update with the served model, one forward pass.
    const auto room = static_cast<std::size_t>(std::max<int64_t>(1, options_.update_every - static_cast<int64_t>(pending_.size())));
    const std::size_t end = std::min(items.size(), i + room);
    data::Examples batch;
    for (std::size_t k = i; k < end; ++k) {
      if (!options_.update.allow_new_labels && !known_labels_.count(items[k].example.label)) {
        std::string list;
        for (const auto& l : served_.manifest.labels) list += (list.empty() ? "" : ", ") + l;
        throw DataError(items[k].where + ": label '" + items[k].example.label + "' is not one of the model's " +
                        std::to_string(served_.manifest.labels.size()) + " labels (" + list +
                        "); fix the label, or pass --allow-new-labels to learn it as a new class");
      }
      batch.push_back(items[k].example);
    }
    std::vector<artifact::Prediction> predictions;
    if (options_.update.yield_if) {
      // In pieces, giving up the CPU between them (the server's learner: serving threads run first).
      for (std::size_t b = 0; b < batch.size(); b += kYieldPiece) {
        std::vector<std::size_t> idx;
        for (std::size_t k = b; k < std::min(batch.size(), b + kYieldPiece); ++k) idx.push_back(k);
        auto part = predictor_->predict(encodings_.encode(predictor_->preprocessors(), batch.select(idx)));
        predictions.insert(predictions.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
        if (options_.update.yield_if()) std::this_thread::yield();
      }
    } else {
      predictions = predictor_->predict(encodings_.encode(predictor_->preprocessors(), batch));
    }
    std::size_t k = i;
    bool updated = false;
    for (; k < end && !updated; ++k) {
      const FeedbackItem& item = items[k];
      if (item.seq > 0) cursor_ = item.seq;
      if (!item.id.empty() && !ids_.insert(item.id).second) {
        ++summary_.duplicates;
        continue;
      }
      const bool correct = predictions[k - i].label == item.example.label;
      ++summary_.items;
      summary_.correct += correct;
      recent_correct_.push_back(correct);
      if (recent_correct_.size() > kRecentAccuracyWindow) recent_correct_.pop_front();
      bool drift = false;
      for (DriftDetector* d : {static_cast<DriftDetector*>(&adwin_), static_cast<DriftDetector*>(&page_hinkley_)}) {
        if (d->update(correct ? 0.0 : 1.0)) {
          drift = true;
          ++summary_.drifts[d->name()];
          record({{"event", "drift"}, {"detector", d->name()}, {"items_seen", summary_.items},
                  {"online_accuracy", summary_.online_accuracy()}});
          say(d->name() + " detected a drift in the error rate at item " + std::to_string(summary_.items));
        }
      }
      if (std::uniform_real_distribution<double>(0, 1)(gate_rng_) < options_.gate_fraction) {
        gate_feedback_.push_back(item.example);
        if (static_cast<int64_t>(gate_feedback_.size()) > options_.gate_feedback_max) gate_feedback_.pop_front();
      } else {
        pending_.push_back(item.example);
        if (options_.update.allow_new_labels) known_labels_.insert(item.example.label);
      }
      if (held_) {
        // No update while a held candidate waits for its decision.
      } else if (static_cast<int64_t>(pending_.size()) >= options_.update_every) {
        run_update("every");
        updated = true;
      } else if (drift && options_.update_on_drift &&
                 static_cast<int64_t>(pending_.size()) >= options_.buffer.batch_size) {
        run_update("drift");
        updated = true;
      }
    }
    i = k;  // after an update the rest is predicted again, by the model now served
  }
}

void Learner::run_update(const std::string& trigger) {
  if (held_) return;  // the held candidate is decided first; the items keep waiting
  data::Dataset gate = heldout_;
  data::Dataset recent;
  const std::size_t first_recent =
      gate_feedback_.size() > static_cast<std::size_t>(options_.recent_window) ? gate_feedback_.size() - options_.recent_window : 0;
  for (std::size_t i = 0; i < gate_feedback_.size(); ++i) {
    gate.push_back(gate_feedback_[i]);
    if (i >= first_recent) recent.push_back(gate_feedback_[i]);
  }
  UpdateOptions uo = options_.update;
  uo.seed = options_.update.seed + static_cast<uint64_t>(summary_.updates);
  uo.encode = [this](const prep::Preprocessors& p, const data::Examples& x) { return encodings_.encode(p, x); };
  ++summary_.updates;
  nlohmann::json rec = {{"event", "update"},
                        {"update", summary_.updates},
                        {"trigger", trigger},
                        {"items_seen", summary_.items},
                        {"online_accuracy", summary_.online_accuracy()}};
  int64_t recent_ok = 0;
  for (int c : recent_correct_) recent_ok += c;
  rec["recent_accuracy"] = recent_correct_.empty() ? 0.0 : static_cast<double>(recent_ok) / recent_correct_.size();
  try {
    const int64_t hits = encodings_.hits(), misses = encodings_.misses();
    UpdateResult r = gated_update(served_, pending_, buffer_, gate, recent, uo);
    // Rows the update and its gate took from the encoding cache, and rows encoded for them.
    rec["encodings"] = {{"cached", encodings_.hits() - hits}, {"encoded", encodings_.misses() - misses}};
    last_gate_ = r.scores;
    rec["trained_new"] = r.trained_new;
    rec["trained_replayed"] = r.trained_replayed;
    rec["train_seconds"] = r.train_seconds;
    rec["featurize_seconds"] = r.featurize_seconds;
    rec["gate"] = {{"rows", r.scores.gate_rows}, {"served_macro_f1", r.scores.served_gate},
                   {"candidate_macro_f1", r.scores.candidate_gate}};
    rec["recent"] = {{"rows", r.scores.recent_rows}, {"served_macro_f1", r.scores.served_recent},
                     {"candidate_macro_f1", r.scores.candidate_recent}, {"candidate_only", r.scores.candidate_only},
                     {"served_only", r.scores.served_only}, {"sign_test_p", r.scores.improvement_p}};
    if (!r.new_labels.empty()) rec["new_labels"] = r.new_labels;
    rec["promoted"] = r.promoted;
    if (r.promoted && options_.hold_promotions) {
      rec["promoted"] = false;
      rec["held"] = true;
      say("update " + std::to_string(summary_.updates) + ": passed the gate (macro-F1 " + percent(r.scores.served_gate) +
          " -> " + percent(r.scores.candidate_gate) + "), held until its shadow run ends");
      held_ = std::make_unique<UpdateResult>(std::move(r));
    } else if (r.promoted) {
      promote(r);
      rec["version"] = summary_.version;
      say("update " + std::to_string(summary_.updates) + ": promoted " + summary_.version + " (gate macro-F1 " +
          percent(r.scores.served_gate) + " -> " + percent(r.scores.candidate_gate) + ")");
    } else {
      ++summary_.rejected[r.reason_code];
      rec["reason"] = r.reason;
      rec["reason_code"] = r.reason_code;
      say("update " + std::to_string(summary_.updates) + ": rejected: " + r.reason);
    }
  } catch (const Error& e) {
    ++summary_.failed;
    rec["promoted"] = false;
    rec["failed"] = e.what();
    say("update " + std::to_string(summary_.updates) + ": failed: " + e.what());
  }
  rec["buffer_items"] = buffer_.size();
  pending_ = data::Dataset();
  buffer_.save((fs::path(state_dir_) / "buffer.json").string());
  write_state();
  record(rec);
}

void Learner::promote(UpdateResult& r) {
  const std::string name = version_name(next_version_++);
  auto& m = r.candidate.manifest;
  nlohmann::json lineage = m.lineage;
  lineage["version"] = name;
  lineage["parent_version"] = summary_.version.empty() ? "original" : summary_.version;
  lineage["original"] = artifact_dir_;
  lineage["items_seen"] = summary_.items;
  lineage["update"] = summary_.updates;
  lineage["gate"] = {{"served_macro_f1", r.scores.served_gate}, {"candidate_macro_f1", r.scores.candidate_gate},
                     {"rows", r.scores.gate_rows}};
  m.lineage = lineage;
  // Each version carries the original held-out sample, so it can be gated and evaluated on its own.
  const auto dir = (fs::path(state_dir_) / "versions" / name).string();
  artifact::save_artifact(dir, m, r.candidate.preprocessors, *r.candidate.model, &heldout_);
  served_ = artifact::load_artifact(dir);
  predictor_ = std::make_unique<artifact::Predictor>(served_);
  known_labels_.insert(served_.manifest.labels.begin(), served_.manifest.labels.end());
  summary_.version = name;
  ++summary_.promoted;
}

void Learner::remember(const std::vector<FeedbackItem>& items) {
  for (const auto& item : items) (void)buffer_.add(item.example);
  buffer_.save((fs::path(state_dir_) / "buffer.json").string());
}

LearnSummary Learner::finish() {
  if (pending_.size() > 0) run_update("end");
  nlohmann::json rec = summary_.to_json();
  rec["event"] = "end";
  rec["buffer_items"] = buffer_.size();
  record(rec);
  return summary_;
}

void Learner::promote_held(const nlohmann::json& report) {
  if (!held_) return;
  std::unique_ptr<UpdateResult> r = std::move(held_);
  r->candidate.manifest.lineage["shadow"] = report;
  promote(*r);
  write_state();
  record({{"event", "promote"}, {"version", summary_.version}, {"items_seen", summary_.items}, {"shadow", report}});
  say("promoted " + summary_.version + " after its shadow run (" + report.dump() + ")");
}

bool Learner::update_now(const std::string& trigger) {
  if (pending_.size() == 0 || held_) return false;
  run_update(trigger);
  return true;
}

std::string Learner::served_dir() const {
  return summary_.version.empty() ? artifact_dir_ : (fs::path(state_dir_) / "versions" / summary_.version).string();
}

std::string Learner::rollback() {
  if (summary_.version.empty()) {
    throw ConfigError("nothing to roll back: the original artifact " + artifact_dir_ +
                      " is served (no promoted version is)");
  }
  const std::string from = summary_.version;
  std::string parent = served_.manifest.lineage.value("parent_version", std::string("original"));
  if (parent == "original") parent.clear();
  const std::string dir = parent.empty() ? artifact_dir_ : (fs::path(state_dir_) / "versions" / parent).string();
  artifact::Artifact back = artifact::load_artifact(dir);
  served_ = std::move(back);
  predictor_ = std::make_unique<artifact::Predictor>(served_);
  known_labels_.insert(served_.manifest.labels.begin(), served_.manifest.labels.end());
  summary_.version = parent;
  write_state();
  record({{"event", "rollback"}, {"from", from}, {"to", parent.empty() ? "original" : parent},
          {"items_seen", summary_.items}});
  say("rolled back from " + from + " to " + (parent.empty() ? "the original artifact" : parent));
  return dir;
}

}  // namespace kiln::learn
