// `kiln plan`: memory and time of a training or inference job per model, device and device count,
// with data-parallel scaling (kiln/plan/plan.h). No LibTorch: answered by the front binary.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/plan/plan.h"
#include "verbs.h"

namespace kiln::cli {
namespace {
PlanProbe& probe_slot() {
  static PlanProbe probe = nullptr;
  return probe;
}
PlanProbe& data_probe_slot() {
  static PlanProbe probe = nullptr;
  return probe;
}
}  // namespace

void set_plan_probe(PlanProbe probe) { probe_slot() = probe; }
PlanProbe plan_probe() { return probe_slot(); }
void set_plan_data_probe(PlanProbe probe) { data_probe_slot() = probe; }
PlanProbe plan_data_probe() { return data_probe_slot(); }

void add_plan(CLI::App& app) {
  struct Flags {
    std::string model, data;
    plan::JobSpec job;
    plan::RunSpec run;
    bool json = false, table = false, no_measure = false;
    std::int64_t seq_len = 0;
    std::string mfu_given;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("plan", "Estimate memory and time of a training job per model size and device count");
  cmd->add_option("--model", f->model,
                  "A preset (bert-tiny ... bert-large, resnet18, cnn-small, mlp, embedbag, linear), a run config "
                  "(.yaml) or an artifact directory");
  cmd->add_option("--seq-len", f->seq_len, "Tokens per text (bag models: non-zero features per text; default 128)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch", f->job.batch, "Examples per device per step (default 32)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--samples", f->job.samples, "Training examples per epoch (default 100000)")->check(CLI::Range(1LL, 1LL << 50));
  cmd->add_option("--data", f->data,
                  "With an artifact --model: the training file; kiln-ml reads it with the artifact's columns, fits "
                  "the artifact's preprocessors on it and encodes it, measuring the memory that adds, and takes "
                  "--samples and (bag models) --seq-len and --rows-per-batch from it unless given");
  cmd->add_option("--epochs", f->job.epochs, "Epochs (default 1)")->check(CLI::Range(1, 100000));
  cmd->add_option("--classes", f->job.classes, "Classes of the head (default 2; an artifact's own labels)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--image-size", f->job.image_size, "Image side in pixels (default 224 for resnet18, 28 for cnn-small)")
      ->check(CLI::Range(8, 8192));
  cmd->add_option("--features", f->job.features, "Bag models' input features (default 50000; a config's max_features)")
      ->check(CLI::Range(1LL, 1LL << 40));
  cmd->add_option("--rows-per-batch", f->job.rows_per_batch,
                  "Bag models: distinct table rows a batch (per device) touches (default: batch x --seq-len, at "
                  "most --features)")
      ->check(CLI::Range(1LL, 1LL << 40));
  cmd->add_option("--vocab-size", f->job.vocab_size, "BERT vocabulary (default 30522)")->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--gpu", f->run.device, "Device: " + [] {
    std::string s;
    for (const auto& n : plan::device_names()) s += (s.empty() ? "" : "|") + n;
    return s;
  }() + " (default cpu: this machine)");
  cmd->add_option("--n", f->run.n, "Data-parallel ranks (devices; default 1)")->check(CLI::Range(1, 4096));
  cmd->add_option("--interconnect", f->run.interconnect, "pcie|nvlink|ib (cpu: shm; default the device's first link)");
  cmd->add_option("--overlap", f->run.overlap, "Share of backward the all-reduce hides behind (default 0.9)");
  cmd->add_option("--grad-dtype", f->run.grad_dtype, "Gradient dtype all-reduced: fp32 (default) or bf16");
  cmd->add_option("--dtype", f->run.dtype, "Compute dtype: fp32 or bf16 (default bf16 on GPUs, fp32 on cpu)");
  cmd->add_option("--mfu", f->run.mfu, "Achieved share of peak FLOP/s (default 0.4; --gpu cpu times the ops instead "
                                      "unless --no-measure)")
      ->each([f](const std::string& v) { f->mfu_given = v; });
  cmd->add_flag("--inference", f->job.inference, "Forward only: no gradients, optimizer or kept activations");
  cmd->add_flag("--no-measure", f->no_measure,
                "--gpu cpu: estimate time as FLOPs / (cpuid peak x --mfu) instead of timing the step's ops here");
  cmd->add_flag("--json", f->json, "Print one JSON object");
  cmd->add_flag("--table", f->table, "Print the resource table (BERT small/base/large x 1/4/8 GPUs, PCIe vs NVLink)");
  cmd->callback([f, cmd]() {
    if (f->seq_len > 0) f->job.seq_len = f->seq_len;
    if (f->table) {
      std::cout << plan::format_table(f->job, f->run);
      return;
    }
    if (f->model.empty()) {
      throw ConfigError("kiln plan needs --model (a preset such as bert-base, a run config .yaml or an artifact "
                        "directory), or --table");
    }
    plan::JobSpec job = f->job;
    job.ranks = f->run.n;
    double runtime_before_data = 0;  // kiln-ml's resident set before --data was read
    if (!f->data.empty()) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(std::filesystem::path(f->model) / "kiln.json", ec)) {
        throw ConfigError("plan: --data needs --model to name an artifact directory (one holding kiln.json), got '" +
                          f->model + "'; train one on a sample of the data first, or drop --data");
      }
      if (plan_data_probe() == nullptr) hand_over_to_ml();  // the front binary: kiln-ml fits with LibTorch
      const int threads = std::max(1, core::threads() / std::max(1, f->run.n));
      const nlohmann::json p = plan_data_probe()(
          {{"artifact", f->model}, {"data", f->data}, {"batch", job.batch}, {"threads", threads}});
      if (!cmd->count("--samples")) job.samples = p.at("samples").get<int64_t>();
      if (!cmd->count("--seq-len") && p.contains("seq_len")) {
        job.seq_len = std::max<int64_t>(1, std::llround(p["seq_len"].get<double>()));
      }
      if (!cmd->count("--rows-per-batch") && p.contains("rows_per_batch")) {
        job.rows_per_batch = std::max<int64_t>(1, std::llround(p["rows_per_batch"].get<double>()));
      }
      job.data_peak_bytes = p.at("peak_bytes").get<double>();
      job.data_kept_bytes = p.at("kept_bytes").get<double>();
      runtime_before_data = p.at("runtime_bytes").get<double>();
      job.data_source = p.at("source").get<std::string>();
    }
    const plan::ModelShape m = plan::resolve_model(f->model, job);
    plan::RunSpec run = f->run;
    plan::KernelTimes times;
    if (run.device == "cpu" && !f->no_measure && !job.inference && !m.kernels.empty()) {
      if (plan_probe() == nullptr) hand_over_to_ml();  // the front binary: kiln-ml times the ops with LibTorch
      if (!f->mfu_given.empty()) {
        throw ConfigError("plan: --mfu applies to FLOP-based estimates; with --gpu cpu the step's ops are timed "
                          "on this machine. Add --no-measure to use --mfu");
      }
      // Ranks on one machine split its threads (kiln train --nproc N gives each threads / N).
      const int threads = std::max(1, core::threads() / run.n);
      if (run.n > 256) {
        throw ConfigError("plan: --gpu cpu --n " + std::to_string(run.n) + ": kiln plan times the step with one copy "
                          "per rank, at most 256; add --no-measure for a FLOP-based estimate");
      }
      nlohmann::json request = {{"kernels", plan::kernels_to_json(m.kernels)}, {"threads", threads}, {"ranks", run.n}};
      if (run.n > 1) {
        // The ranks all-reduce the step's gradients over loopback TCP: time Gloo doing it at that size
        // (small all-reduces cost their latency, large ones the bandwidth).
        const double bytes = plan::estimate(m, job, run).gradient_bytes;
        request["link_bytes"] = static_cast<int64_t>(std::clamp(bytes, 4096.0, 512.0 * 1024 * 1024));
      }
      const nlohmann::json answer = plan_probe()(request);
      times = plan::kernel_times_from_json(answer, m.kernels.size());
      if (runtime_before_data > 0) {
        // The probe's resident set held the --data rows when it started: the runtime is kiln-ml's
        // before reading them plus what running the ops added (thread pools, BLAS buffers, code
        // paged in, the heap malloc keeps).
        const double added = answer.value("runtime_bytes", 0.0) - answer.value("runtime_start_bytes", 0.0);
        times.runtime_bytes = runtime_before_data + std::max(0.0, added);
      }
      run.measured = &times;
    }
    const plan::Estimate e = plan::estimate(m, job, run);
    if (f->json) {
      std::cout << plan::to_json(m, job, run, e).dump(2) << "\n";
    } else {
      std::cout << plan::format_estimate(m, job, run, e);
    }
  });
}

}  // namespace kiln::cli
