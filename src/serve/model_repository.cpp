#include "model_repository.h"

#include <algorithm>
#include <filesystem>

#include "kiln/artifact/artifact.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "served_model.h"
#include "server_metrics.h"

namespace kiln::serve {

namespace fs = std::filesystem;

namespace {

fs::path absolute_normal(const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::current_path() / path;
  return path.lexically_normal();
}

std::string joined(const std::vector<std::pair<std::string, std::string>>& models) {
  std::string out;
  for (const auto& [name, dir] : models) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

bool valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

bool holds_artifact(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "kiln.json", ec) || fs::is_regular_file(fs::path(dir) / "model" / "kiln.json", ec);
}

RepositoryLayout discover_models(const std::string& dir, const std::string& model_name,
                                 const std::string& default_model) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    (void)artifact::locate_artifact(dir);  // its ArtifactError says what is there instead
    throw ConfigError(dir + ": " + (fs::exists(dir, ec) ? "is not a directory" : "not found") +
                      "; kiln serve takes an artifact directory (kiln train --out) or a model repository (a directory "
                      "with one artifact per subdirectory)");
  }
  RepositoryLayout out;
  if (holds_artifact(dir)) {
    fs::path artifact = fs::exists(fs::path(dir) / "kiln.json", ec) ? fs::path(dir) : fs::path(dir) / "model";
    if (artifact != fs::path(dir)) core::info("using the artifact " + artifact.string() + " of run directory " + dir);
    const fs::path canonical = fs::weakly_canonical(absolute_normal(artifact.string()), ec);
    const std::string name = model_name.empty() ? canonical.filename().string() : model_name;
    if (!valid_model_name(name)) {
      throw ConfigError((model_name.empty() ? "the artifact directory's name '" : "--model-name '") + name +
                        "' cannot name a model in a URL (letters, digits, '.', '_', '-'); pass --model-name NAME");
    }
    if (!default_model.empty() && default_model != name) {
      throw ConfigError("--default-model " + default_model + ": this server serves one model, '" + name +
                        "'; drop --default-model, or pass a model repository");
    }
    out.models.emplace_back(name, artifact.string());
    out.default_model = name;
    return out;
  }
  const fs::path root = absolute_normal(dir);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory(ec) && holds_artifact(entry.path().string())) names.push_back(entry.path().filename().string());
  }
  if (ec) throw ConfigError(dir + ": cannot list the directory: " + ec.message());
  if (names.empty()) {
    throw ConfigError(dir + ": holds no kiln.json, and none of its subdirectories does; pass an artifact directory "
                      "(kiln train --out) or a model repository (one artifact per subdirectory: REPO/NAME/kiln.json)");
  }
  if (!model_name.empty()) {
    throw ConfigError("--model-name " + model_name + ": " + dir +
                      " is a model repository, whose models are named by their subdirectories; drop --model-name "
                      "(rename a subdirectory to rename its model)");
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (!valid_model_name(name)) {
      throw ConfigError((root / name).string() + ": the subdirectory's name cannot name a model in a URL (letters, "
                        "digits, '.', '_', '-'); rename it");
    }
    out.models.emplace_back(name, (root / name).string());
  }
  out.repository = root.string();
  if (!default_model.empty()) {
    if (std::find(names.begin(), names.end(), default_model) == names.end()) {
      throw ConfigError("--default-model " + default_model + ": no such model in the repository " + dir +
                        " (its models: " + joined(out.models) + ")");
    }
    out.default_model = default_model;
  } else if (names.size() == 1) {
    out.default_model = names.front();
  } else {
    throw ConfigError("the model repository " + dir + " holds " + std::to_string(names.size()) + " models (" +
                      joined(out.models) + "); choose the one /v1/predict serves with --default-model NAME");
  }
  return out;
}

ModelSlot::ModelSlot(std::string name, std::shared_ptr<const ServedModel> model, std::unique_ptr<Batcher> batcher,
                     Metrics metrics)
    : name_(std::move(name)), model_(std::move(model)), batcher_(std::move(batcher)), metrics_(metrics) {}

ModelLease::ModelLease(std::shared_ptr<ModelSlot> slot) : slot_(std::move(slot)) {
  if (slot_) slot_->in_flight_.fetch_add(1, std::memory_order_acq_rel);
}

ModelLease::~ModelLease() {
  if (slot_ && slot_->in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard<std::mutex> lock(slot_->mu_);
    slot_->drained_.notify_all();
  }
}

ModelRepository::ModelRepository(const RepositoryLayout& layout, std::string model_root, ModelLoader loader,
                                 BatcherOptions batching, std::size_t drift_window, std::string device,
                                 ServerMetrics& metrics)
    : repository_(layout.repository),
      model_root_(std::move(model_root)),
      default_name_(layout.default_model),
      loader_(std::move(loader)),
      batching_(batching),
      drift_window_(drift_window),
      device_(std::move(device)),
      metrics_(metrics) {
  for (const auto& [name, dir] : layout.models) {
    try {
      (void)load(name, dir);
    } catch (const Error& e) {
      stop();
      if (layout.models.size() == 1) throw;
      const std::string what = e.what();
      throw ArtifactError("model '" + name + "' of the repository " + layout.repository + " (" + dir +
                          ") did not load: " + what.substr(0, what.find('\n')) + "; fix or remove " + dir);
    } catch (...) {
      stop();
      throw;
    }
  }
}

ModelRepository::~ModelRepository() {
  stop();
  std::lock_guard<std::mutex> lock(threads_mu_);
  for (auto& t : drains_) {
    if (t.joinable()) t.join();
  }
}

ModelLease ModelRepository::acquire(const std::string& name) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (const auto& s : slots_) {
    if (s->name_ == name) return ModelLease(s);  // counted before an unload can take it
  }
  return {};
}

std::string ModelRepository::directory_of(const std::string& name) const {
  return (fs::path(repository_.empty() ? model_root_ : repository_) / name).string();
}

std::vector<std::shared_ptr<const ModelSlot>> ModelRepository::loaded() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return std::vector<std::shared_ptr<const ModelSlot>>(slots_.begin(), slots_.end());
}

std::string ModelRepository::artifact_of(const std::string& name) const {
  const ModelLease lease = acquire(name);
  return lease ? lease->model()->dir() : std::string();
}

std::vector<ModelIndexEntry> ModelRepository::index() const {
  std::vector<ModelIndexEntry> out;
  for (const auto& s : loaded()) out.push_back({s->name(), s->model()->version(), "READY", ""});
  if (!repository_.empty()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(repository_, ec)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory(ec) || !valid_model_name(name) || !holds_artifact(entry.path().string())) continue;
      if (std::none_of(out.begin(), out.end(), [&](const ModelIndexEntry& e) { return e.name == name; })) {
        out.push_back({name, "", "UNAVAILABLE", "unloaded"});
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void ModelRepository::set_model_info(const std::string& name, const ServedModel& m, double value) {
  metrics_.model_info->labels({name, m.version(), m.family(), m.dir()}).set(value);
}

std::string ModelRepository::load(const std::string& name, const std::string& dir, std::string* previous) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  std::shared_ptr<const ServedModel> fresh;
  try {
    fresh = loader_(dir, drift_window_, device_);
  } catch (...) {
    metrics_.reloads->labels({name, "failure"}).inc();
    throw;
  }
  std::shared_ptr<ModelSlot> existing;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& s : slots_) {
      if (s->name_ == name) existing = s;
    }
  }
  if (existing) {
    const auto old = existing->model();
    std::atomic_store(&existing->model_, fresh);
    set_model_info(name, *old, 0.0);
    set_model_info(name, *fresh, 1.0);
    metrics_.reloads->labels({name, "success"}).inc();
    core::info("serve: model " + name + " reloaded from " + dir + " (version " + fresh->version() + ", was " +
               old->version() + ")");
    if (previous) *previous = old->version();
    return fresh->version();
  }
  ServerMetrics& metrics = metrics_;
  HistogramChild* batch_size = &metrics.batch_size->labels({name});
  auto slot = std::make_shared<ModelSlot>(
      name, fresh,
      std::make_unique<Batcher>(batching_, [batch_size](std::size_t n) { batch_size->observe(static_cast<double>(n)); }),
      ModelSlot::Metrics{&metrics.texts->labels({name}), &metrics.confidence->labels({name})});
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    const auto at = std::lower_bound(slots_.begin(), slots_.end(), name,
                                     [](const std::shared_ptr<ModelSlot>& s, const std::string& n) { return s->name_ < n; });
    slots_.insert(at, slot);
  }
  set_model_info(name, *fresh, 1.0);
  core::info("serve: model " + name + " loaded from " + dir + " (version " + fresh->version() +
             (fresh->variant() == "fp32" ? std::string() : ", running variant " + fresh->variant()) + ")");
  if (previous) previous->clear();
  return fresh->version();
}

std::shared_ptr<ModelSlot> ModelRepository::take(const std::string& name) {
  std::lock_guard<std::mutex> admin(admin_mu_);
  std::unique_lock<std::shared_mutex> lock(mu_);
  const auto it = std::find_if(slots_.begin(), slots_.end(), [&](const auto& s) { return s->name_ == name; });
  if (it == slots_.end()) return nullptr;
  auto slot = *it;
  slots_.erase(it);
  return slot;
}

void ModelRepository::drain(const std::shared_ptr<ModelSlot>& slot) {
  {
    std::unique_lock<std::mutex> lock(slot->mu_);
    slot->drained_.wait(lock, [&] { return slot->in_flight_.load(std::memory_order_acquire) == 0; });
  }
  slot->batcher_->stop();
  const auto m = slot->model();
  {
    std::lock_guard<std::mutex> lock(collect_mu_);
    const std::string& name = slot->name_;
    metrics_.queue_depth->remove({name});
    metrics_.drift_psi->remove({name, "text_length"});
    metrics_.drift_oov->remove({name});
    metrics_.drift_shift->remove({name});
    metrics_.drift_window->remove({name});
    set_model_info(name, *m, 0.0);
  }
  core::info("serve: model " + slot->name_ + " unloaded (version " + m->version() + ")");
}

bool ModelRepository::unload(const std::string& name) {
  const auto slot = take(name);
  if (!slot) return false;
  drain(slot);
  return true;
}

bool ModelRepository::unload_async(const std::string& name, std::function<void()> done) {
  auto slot = take(name);
  if (!slot) return false;
  std::lock_guard<std::mutex> lock(threads_mu_);
  drains_.emplace_back([this, slot = std::move(slot), done = std::move(done)] {
    drain(slot);
    done();
  });
  return true;
}

void ModelRepository::with_loaded(
    const std::function<void(const std::vector<std::shared_ptr<const ModelSlot>>&)>& fn) const {
  std::lock_guard<std::mutex> lock(collect_mu_);
  fn(loaded());
}

void ModelRepository::stop() {
  std::vector<std::shared_ptr<ModelSlot>> slots;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    slots = slots_;
  }
  for (const auto& s : slots) s->batcher_->stop();
}

}  // namespace kiln::serve
