// Many models in one server, as Triton's model repository: a directory whose subdirectories are
// artifacts, each served under its subdirectory's name with its own batcher and metrics label; or
// one artifact, named by its directory. Models load, unload and reload while the server serves.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/serve/batcher.h"
#include "kiln/serve/metrics.h"
#include "kiln/serve/server.h"

namespace kiln::serve {

class ServedModel;
struct ServerMetrics;

/// What `kiln serve DIR` serves, decided by what DIR holds.
struct RepositoryLayout {
  /// The repository directory (absolute, normalized); empty when DIR is one artifact.
  std::string repository;
  /// Name and artifact directory of each model loaded at start-up, sorted by name.
  std::vector<std::pair<std::string, std::string>> models;
  /// The model /v1/predict, /v1/model and /readyz serve.
  std::string default_model;
};

/// DIR holding a kiln.json (or DIR/model holding one: a run directory) is one artifact, named
/// `model_name` or else its directory's name. Otherwise the subdirectories of DIR that hold one
/// form a repository, each model named by its subdirectory; the default model is `default_model`,
/// or the only one. Throws ConfigError naming DIR and the fix: not a directory, no artifact in it or
/// its subdirectories, several models and no `default_model` (listing them), a `default_model` that
/// is not there, `model_name` given for a repository, a subdirectory name that is not a model name.
[[nodiscard]] RepositoryLayout discover_models(const std::string& dir, const std::string& model_name,
                                               const std::string& default_model);

/// Whether `name` can name a model in a URL path as it is: 1-128 letters, digits, '.', '_', '-',
/// and not "." or "..".
[[nodiscard]] bool valid_model_name(const std::string& name);

/// Whether `dir` holds an artifact (DIR/kiln.json or DIR/model/kiln.json).
[[nodiscard]] bool holds_artifact(const std::string& dir);

/// One loaded model: its artifact (swapped atomically by reload) and its own batcher.
/// Thread-safe.
class ModelSlot {
 public:
  /// The model's metric children that every prediction updates (found once, not per request).
  struct Metrics {
    CounterChild* texts = nullptr;
    HistogramChild* confidence = nullptr;
  };
  ModelSlot(std::string name, std::shared_ptr<const ServedModel> model, std::unique_ptr<Batcher> batcher,
            Metrics metrics);
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const Metrics& metrics() const { return metrics_; }
  [[nodiscard]] std::shared_ptr<const ServedModel> model() const { return std::atomic_load(&model_); }
  [[nodiscard]] Batcher& batcher() const { return *batcher_; }

 private:
  friend class ModelLease;
  friend class ModelRepository;
  const std::string name_;
  std::shared_ptr<const ServedModel> model_;  // std::atomic_load / atomic_store
  std::unique_ptr<Batcher> batcher_;
  const Metrics metrics_;
  std::atomic<std::size_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable drained_;
};

/// A request's hold on a model, from routing to its answer: unload waits until every lease taken
/// before it has ended, so a request accepted before an unload is answered by the model. Copies
/// hold too. Empty when the model was not loaded.
class ModelLease {
 public:
  ModelLease() = default;
  explicit ModelLease(std::shared_ptr<ModelSlot> slot);
  ModelLease(const ModelLease& other) : ModelLease(other.slot_) {}
  ModelLease(ModelLease&& other) noexcept : slot_(std::move(other.slot_)) {}
  ModelLease& operator=(ModelLease other) noexcept {
    std::swap(slot_, other.slot_);
    return *this;
  }
  ~ModelLease();
  explicit operator bool() const { return slot_ != nullptr; }
  const ModelSlot* operator->() const { return slot_.get(); }
  const ModelSlot& operator*() const { return *slot_; }

 private:
  std::shared_ptr<ModelSlot> slot_;
};

/// The repository index entry of one model (Triton's repository extension).
struct ModelIndexEntry {
  std::string name, version;
  /// "READY" (loaded) or "UNAVAILABLE" (in the repository, not loaded).
  std::string state;
  std::string reason;
};

/// The loaded models by name. Thread-safe: lookups (every request) take a shared lock; load,
/// unload and reload are serialized among themselves.
class ModelRepository {
 public:
  /// Loads every model of `layout` (ArtifactError naming the model and its directory when one does
  /// not load). `model_root`: where models load from by name when `layout` has no repository.
  ModelRepository(const RepositoryLayout& layout, std::string model_root, ModelLoader loader, BatcherOptions batching,
                  std::size_t drift_window, std::string device, ServerMetrics& metrics);
  /// Stops every batcher (after its queued requests) and joins unloads still draining.
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  /// A lease on model `name`; empty when no model of that name is loaded.
  [[nodiscard]] ModelLease acquire(const std::string& name) const;
  [[nodiscard]] ModelLease acquire_default() const { return acquire(default_name_); }
  [[nodiscard]] const std::string& default_name() const { return default_name_; }
  /// Where a model named `name` loads from when it is not loaded: DIR/name of the repository (or of
  /// the model root when the server serves one artifact).
  [[nodiscard]] std::string directory_of(const std::string& name) const;
  /// The loaded models, by name.
  [[nodiscard]] std::vector<std::shared_ptr<const ModelSlot>> loaded() const;
  /// Loaded models, and the repository's artifacts that are not, by name.
  [[nodiscard]] std::vector<ModelIndexEntry> index() const;
  /// The artifact directory model `name` was loaded from; empty when it is not loaded.
  [[nodiscard]] std::string artifact_of(const std::string& name) const;

  /// Loads `dir` as model `name`: a new model with its own batcher, or, when `name` is loaded,
  /// swapped in atomically (requests already batched finish on the old artifact). On failure
  /// whatever served keeps serving and the error propagates. Returns the new version; `previous`
  /// gets the old one (empty for a new model).
  std::string load(const std::string& name, const std::string& dir, std::string* previous = nullptr);
  /// Takes model `name` off the routes at once (later requests: not found), then waits until every
  /// request that holds it has been answered and stops its batcher. False when it is not loaded.
  /// Never for the default model (the caller refuses).
  bool unload(const std::string& name);
  /// As unload(), answering `done` on its own thread once drained (so a request thread never waits
  /// for requests that need request threads). False, without calling `done`, when not loaded.
  bool unload_async(const std::string& name, std::function<void()> done);
  /// Runs `fn` with the loaded models while no unload removes their metrics (collect time).
  void with_loaded(const std::function<void(const std::vector<std::shared_ptr<const ModelSlot>>&)>& fn) const;
  /// Stops every batcher after finishing its queued requests. Idempotent.
  void stop();

 private:
  std::shared_ptr<ModelSlot> take(const std::string& name);
  void drain(const std::shared_ptr<ModelSlot>& slot);
  void set_model_info(const std::string& name, const ServedModel& m, double value);

  std::string repository_, model_root_, default_name_;
  ModelLoader loader_;
  BatcherOptions batching_;
  std::size_t drift_window_;
  std::string device_;
  ServerMetrics& metrics_;
  mutable std::shared_mutex mu_;  // slots_
  std::vector<std::shared_ptr<ModelSlot>> slots_;  // sorted by name
  std::mutex admin_mu_;                            // load / unload
  mutable std::mutex collect_mu_;                  // metrics of models being unloaded
  std::mutex threads_mu_;
  std::vector<std::thread> drains_;
};

}  // namespace kiln::serve
