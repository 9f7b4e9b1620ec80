#include "checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace kiln::train {
namespace {

torch::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string tensor_bytes(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<std::size_t>(c.numel()));
}

// The archive's bytes (LibTorch's zip format), serialized in memory into `bytes` (its capacity kept).
void archive_into(torch::serialize::OutputArchive& archive, const fs::path& path, std::string& bytes) {
  bytes.clear();
  try {
    archive.save_to([&](const void* data, std::size_t n) -> std::size_t {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
  } catch (const c10::Error& e) {
    throw IoError("writing " + path.string() + ": cannot serialize the checkpoint: " + e.what_without_backtrace() +
                  "; check free memory and retry");
  }
}

std::string archive_bytes(torch::serialize::OutputArchive& archive, const fs::path& path) {
  std::string bytes;
  archive_into(archive, path, bytes);
  return bytes;
}

torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

nlohmann::json state_json(const CheckpointState& s) {
  nlohmann::json j = {{"epoch", s.epoch},
          {"best_epoch", s.best_epoch},
          {"best_val_macro_f1", s.best_val_macro_f1},
          {"epochs_without_improvement", s.epochs_without_improvement},
          {"stopped_early", s.stopped_early},
          {"schedule", s.schedule},
          {"history", s.history}};
  if (!s.extra.is_null()) j["extra"] = s.extra;
  return j;
}

}  // namespace

namespace {

/// One checkpoint's files, serialized and ready to write.
struct CheckpointFiles {
  fs::path dir;
  std::string best;  ///< best.pt's bytes; empty when this epoch is not the best
  std::string checkpoint;
  std::string json;
};

CheckpointFiles serialize_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                                     torch::optim::Optimizer& optimizer, const CheckpointState& state, bool is_best) {
  CheckpointFiles f;
  f.dir = run_dir;
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optim_archive;
  model.save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("rng", cpu_rng_state());
  archive.write("state", bytes_tensor(state_json(state).dump()));
  if (is_best) {
    torch::serialize::OutputArchive best;
    model.save(best);
    f.best = archive_bytes(best, f.dir / "best.pt");
  }
  f.checkpoint = archive_bytes(archive, f.dir / "checkpoint.pt");
  f.json = state_json(state).dump(2) + "\n";
  return f;
}

// Each file through one core::AtomicFile: the previous one stays until the new one is complete and
// synced. An empty `best`: this epoch is not the best.
void write_checkpoint(const fs::path& dir, std::string_view best, std::string_view checkpoint, std::string_view json) {
  if (!best.empty()) core::write_file_atomic(dir / "best.pt", best);
  core::write_file_atomic(dir / "checkpoint.pt", checkpoint);
  core::write_file_atomic(dir / "checkpoint.json", json);
}

void write_checkpoint(const CheckpointFiles& f) { write_checkpoint(f.dir, f.best, f.checkpoint, f.json); }

}  // namespace

/// Copies of the tensors a checkpoint holds, in buffers kept from one checkpoint to the next (the
/// same model gives the same tensors in the same order, so no page is allocated again).
class CheckpointSnapshot {
 public:
  /// A copy of `t` with its requires_grad flag (LibTorch's archive records it).
  torch::Tensor copy(const torch::Tensor& t) {
    if (!t.defined()) return t;
    torch::NoGradGuard no_grad;
    if (next_ == buffers_.size()) buffers_.emplace_back();
    torch::Tensor& b = buffers_[next_++];
    if (!b.defined() || b.sizes() != t.sizes() || b.scalar_type() != t.scalar_type() || b.device() != t.device() ||
        !b.is_contiguous() || t.layout() != torch::kStrided) {
      b = t.detach().clone(torch::MemoryFormat::Contiguous);
    } else {
      b.copy_(t);
    }
    b.set_requires_grad(t.requires_grad());
    return b;
  }
  void restart() { next_ = 0; }

  /// The serialized files, kept from one checkpoint to the next as the copies are (a 41 MB
  /// checkpoint in fresh memory each epoch was 10,000 page faults).
  std::string best_bytes, checkpoint_bytes;

 private:
  std::vector<torch::Tensor> buffers_;
  std::size_t next_ = 0;
};

namespace {

/// What torch::nn::Module::save writes, with each tensor replaced by its copy.
void save_copies(const torch::nn::Module& module, torch::serialize::OutputArchive& archive, CheckpointSnapshot& snap) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) archive.write(p.key(), snap.copy(p.value()));
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    archive.write(b.key(), snap.copy(b.value()), /*is_buffer=*/true);
  }
  for (const auto& c : module.named_children()) {
    if (!c.value()->is_serializable()) continue;
    torch::serialize::OutputArchive child(archive.compilation_unit());
    save_copies(*c.value(), child, snap);
    archive.write(c.key(), child);
  }
}

/// An optimizer of the same kind whose state holds copies of `live`'s state tensors (its parameter
/// groups name the same parameters, which is all the archive records of them); null for kinds
/// other than AdamW and SGD (and Kiln's row-sparse variants of them).
std::unique_ptr<torch::optim::Optimizer> copy_optimizer(torch::optim::Optimizer& live, CheckpointSnapshot& snap) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& g : live.param_groups()) groups.emplace_back(g.params(), g.options().clone());
  std::unique_ptr<torch::optim::Optimizer> copy;
  if (auto* adamw = dynamic_cast<torch::optim::AdamW*>(&live)) {
    copy = std::make_unique<torch::optim::AdamW>(
        std::move(groups), static_cast<const torch::optim::AdamWOptions&>(adamw->defaults()));
    for (const auto& [key, st] : live.state()) {
      const auto& a = static_cast<const torch::optim::AdamWParamState&>(*st);
      auto c = std::make_unique<torch::optim::AdamWParamState>();
      c->step(a.step());
      c->exp_avg(snap.copy(a.exp_avg()));
      c->exp_avg_sq(snap.copy(a.exp_avg_sq()));
      c->max_exp_avg_sq(snap.copy(a.max_exp_avg_sq()));
      copy->state()[key] = std::move(c);
    }
  } else if (auto* lbfgs = dynamic_cast<torch::optim::LBFGS*>(&live)) {
    // The L-BFGS history (2 x history_size vectors of the parameters' size: 120 MB on Brown's
    // logistic regression) is copied here and serialized behind, as AdamW's moments are.
    copy = std::make_unique<torch::optim::LBFGS>(std::move(groups),
                                                 static_cast<const torch::optim::LBFGSOptions&>(lbfgs->defaults()));
    auto copies = [&snap](const std::deque<torch::Tensor>& from) {
      std::deque<torch::Tensor> to;
      for (const auto& t : from) to.push_back(snap.copy(t));
      return to;
    };
    for (const auto& [key, st] : live.state()) {
      const auto& a = static_cast<const torch::optim::LBFGSParamState&>(*st);
      auto c = std::make_unique<torch::optim::LBFGSParamState>();
      c->func_evals(a.func_evals());
      c->n_iter(a.n_iter());
      c->t(a.t());
      c->prev_loss(a.prev_loss());
      c->d(snap.copy(a.d()));
      c->H_diag(snap.copy(a.H_diag()));
      c->prev_flat_grad(snap.copy(a.prev_flat_grad()));
      c->old_dirs(copies(a.old_dirs()));
      c->old_stps(copies(a.old_stps()));
      c->ro(copies(a.ro()));
      c->al(c10::nullopt);  // scratch of torch's step that FusedLbfgs::save drops too
      copy->state()[key] = std::move(c);
    }
  } else if (auto* sgd = dynamic_cast<torch::optim::SGD*>(&live)) {
    copy = std::make_unique<torch::optim::SGD>(std::move(groups),
                                               static_cast<const torch::optim::SGDOptions&>(sgd->defaults()));
    for (const auto& [key, st] : live.state()) {
      const auto& s = static_cast<const torch::optim::SGDParamState&>(*st);
      auto c = std::make_unique<torch::optim::SGDParamState>();
      c->momentum_buffer(snap.copy(s.momentum_buffer()));
      copy->state()[key] = std::move(c);
    }
  }
  return copy;
}

}  // namespace

void save_checkpoint(const std::string& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const CheckpointState& state, bool is_best) {
  write_checkpoint(serialize_checkpoint(run_dir, model, optimizer, state, is_best));
}

CheckpointWriter::~CheckpointWriter() {
  if (worker_.joinable()) worker_.join();
}

void CheckpointWriter::wait() {
  if (worker_.joinable()) worker_.join();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

CheckpointWriter::CheckpointWriter() : snapshot_(std::make_unique<CheckpointSnapshot>()) {}

void CheckpointWriter::save(const std::string& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                            const CheckpointState& state, bool is_best) {
  wait();  // the previous checkpoint is written: its copies can be overwritten
  snapshot_->restart();
  auto optimizer_copy = copy_optimizer(optimizer, *snapshot_);
  if (!optimizer_copy) {  // a kind without a copy here: serialized now, written behind
    CheckpointFiles files = serialize_checkpoint(run_dir, model, optimizer, state, is_best);
    worker_ = std::thread([this, files = std::move(files)] {
      try {
        write_checkpoint(files);
      } catch (...) {
        error_ = std::current_exception();
      }
    });
    return;
  }
  // The archives hold the copies; serializing them (LibTorch's zip format: pickling and a CRC-32
  // of every byte, 40-70 ms an epoch on the Spam seed recipe) moves to the writer's thread.
  auto model_archive = std::make_shared<torch::serialize::OutputArchive>();
  save_copies(model, *model_archive, *snapshot_);
  auto archive = std::make_shared<torch::serialize::OutputArchive>();
  auto optim_archive = std::make_shared<torch::serialize::OutputArchive>();
  optimizer_copy->save(*optim_archive);
  archive->write("model", *model_archive);
  archive->write("optimizer", *optim_archive);
  archive->write("rng", cpu_rng_state());
  archive->write("state", bytes_tensor(state_json(state).dump()));
  fs::path dir = run_dir;
  std::string json = state_json(state).dump(2) + "\n";
  // The sub-archives live until the serialization as they do in save_checkpoint: LibTorch's pickler
  // memoizes an object by how many references it has, so that gives the same bytes.
  worker_ = std::thread([this, dir = std::move(dir), json = std::move(json), archive, model_archive, optim_archive, is_best,
                         optimizer_copy = std::shared_ptr<torch::optim::Optimizer>(std::move(optimizer_copy))]() mutable {
    // Below training's threads: the serialization takes the cores when training leaves them idle.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    try {
      CheckpointSnapshot& snap = *snapshot_;
      snap.best_bytes.clear();
      if (is_best) archive_into(*model_archive, dir / "best.pt", snap.best_bytes);
      archive_into(*archive, dir / "checkpoint.pt", snap.checkpoint_bytes);
      write_checkpoint(dir, snap.best_bytes, snap.checkpoint_bytes, json);
    } catch (...) {
      error_ = std::current_exception();
    }
  });
}

CheckpointState load_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer) {
  const fs::path path = fs::path(run_dir) / "checkpoint.pt";
  if (!fs::exists(path)) {
    throw ArtifactError(path.string() + ": no checkpoint to resume from; run without --resume to start fresh");
  }
  CheckpointState s;
  try {
    torch::serialize::InputArchive archive, model_archive, optim_archive;
    archive.load_from(path.string());
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    model.load(model_archive);
    optimizer.load(optim_archive);
    torch::Tensor rng, state;
    archive.read("rng", rng);
    archive.read("state", state);
    set_cpu_rng_state(rng);
    auto j = nlohmann::json::parse(tensor_bytes(state));
    s.epoch = j.at("epoch").get<int>();
    s.best_epoch = j.at("best_epoch").get<int>();
    s.best_val_macro_f1 = j.at("best_val_macro_f1").get<double>();
    s.epochs_without_improvement = j.at("epochs_without_improvement").get<int>();
    s.stopped_early = j.at("stopped_early").get<bool>();
    s.schedule = j.at("schedule");
    for (const auto& h : j.at("history")) s.history.push_back(h);
    if (j.contains("extra")) s.extra = j["extra"];
  } catch (const c10::Error& e) {
    throw ArtifactError(path.string() + ": cannot resume: the checkpoint is corrupt or was written for a different "
                        "model (" + e.what_without_backtrace() + "); resume with the same config, or start fresh "
                        "without --resume");
  } catch (const nlohmann::json::exception& e) {
    throw ArtifactError(path.string() + ": cannot resume: trainer state is malformed (" + e.what() + ")");
  }
  return s;
}

void load_best(const std::string& run_dir, torch::nn::Module& model) {
  const fs::path path = fs::path(run_dir) / "best.pt";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    model.load(archive);
  } catch (const c10::Error& e) {
    throw ArtifactError(path.string() + ": cannot load the best weights: " + e.what_without_backtrace());
  }
}

void BestWeights::capture(torch::nn::Module& model) {
  torch::NoGradGuard guard;
  std::vector<torch::Tensor> live = model.parameters();
  for (const auto& b : model.buffers()) live.push_back(b);
  // Into the previous copy's storage when it has the same layout: a fresh clone of a large table
  // (fasttext's 2^19 x 64 buckets: 134 MB) paid a page fault for every page it touched, each time
  // (on Brown a quarter of that candidate's run).
  bool reuse = tensors_.size() == live.size();
  for (std::size_t i = 0; reuse && i < live.size(); ++i) {
    reuse = tensors_[i].sizes() == live[i].sizes() && tensors_[i].dtype() == live[i].dtype() &&
            tensors_[i].device() == live[i].device() && live[i].is_contiguous();
  }
  if (reuse) {
    for (std::size_t i = 0; i < live.size(); ++i) tensors_[i].copy_(live[i].detach());
    return;
  }
  tensors_.clear();
  for (const auto& t : live) tensors_.push_back(t.detach().clone(at::MemoryFormat::Contiguous));
}

void BestWeights::restore(torch::nn::Module& model) const {
  torch::NoGradGuard guard;
  std::size_t i = 0;
  for (auto& p : model.parameters()) p.copy_(tensors_.at(i++));
  for (auto& b : model.buffers()) b.copy_(tensors_.at(i++));
}

}  // namespace kiln::train
