#include "checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <exception>
#include <filesystem>
#include <mutex>
#include <string>
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

// The archive's bytes (LibTorch's zip format), serialized in memory.
std::string archive_bytes(torch::serialize::OutputArchive& archive, const fs::path& path) {
  std::string bytes;
  try {
    archive.save_to([&](const void* data, std::size_t n) -> std::size_t {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
  } catch (const c10::Error& e) {
    throw IoError("writing " + path.string() + ": cannot serialize the checkpoint: " + e.what_without_backtrace() +
                  "; check free memory and retry");
  }
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

// Each file through one core::AtomicFile: the previous one stays until the new one is complete and synced.
void write_checkpoint(const CheckpointFiles& f) {
  if (!f.best.empty()) core::write_file_atomic(f.dir / "best.pt", f.best);
  core::write_file_atomic(f.dir / "checkpoint.pt", f.checkpoint);
  core::write_file_atomic(f.dir / "checkpoint.json", f.json);
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

void CheckpointWriter::save(const std::string& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                            const CheckpointState& state, bool is_best) {
  CheckpointFiles files = serialize_checkpoint(run_dir, model, optimizer, state, is_best);
  wait();
  worker_ = std::thread([this, files = std::move(files)] {
    try {
      write_checkpoint(files);
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
  tensors_.clear();
  for (const auto& p : model.parameters()) tensors_.push_back(p.detach().clone());
  for (const auto& b : model.buffers()) tensors_.push_back(b.detach().clone());
}

void BestWeights::restore(torch::nn::Module& model) const {
  torch::NoGradGuard guard;
  std::size_t i = 0;
  for (auto& p : model.parameters()) p.copy_(tensors_.at(i++));
  for (auto& b : model.buffers()) b.copy_(tensors_.at(i++));
}

}  // namespace kiln::train
