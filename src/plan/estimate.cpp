// The device table (hardware.json, compiled in), this machine as the "cpu" device, and the memory /
// time / data-parallel scaling estimate.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/plan/plan.h"

namespace kiln::plan {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

const nlohmann::json& table() {
  static const nlohmann::json j = nlohmann::json::parse(
#include "hardware_json.inc"
  );
  return j;
}

std::vector<Device::Link> parse_links(const nlohmann::json& links) {
  std::vector<Device::Link> out;
  for (const auto& l : links) {
    out.push_back({l.at("name").get<std::string>(), l.at("gbps_per_direction").get<double>() * 1e9,
                   l.at("efficiency").get<double>(), l.at("source").get<std::string>()});
  }
  return out;
}

double mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") return kb * 1024.0;
  }
  return 0;
}

Device cpu_device() {
  const core::CpuInfo& cpu = core::cpu_info();
  const nlohmann::json& t = table().at("cpu");
  Device d;
  d.name = "cpu";
  d.description = (cpu.model_name.empty() ? std::string("this CPU") : cpu.model_name) + ", " +
                  std::to_string(cpu.logical_cores) + " cores";
  d.memory_bytes = mem_total_bytes();
  const double mhz = cpu.mhz > 0 ? cpu.mhz : 2000.0;
  d.peak_flops_fp32 = mhz * 1e6 * cpu.fp32_flops_per_cycle() * std::max(1, cpu.logical_cores);
  // AVX-512 BF16 (vdpbf16ps) does two multiply-adds per fp32 lane.
  d.peak_flops_bf16 = cpu.avx512_bf16 && cpu.os_avx512 ? 2 * d.peak_flops_fp32 : 0;
  d.runtime_bytes = t.at("runtime_mib").get<double>() * kMiB;
  d.source = "cpuid: clock " + std::to_string(static_cast<int>(mhz)) + " MHz x " +
             std::to_string(cpu.fp32_flops_per_cycle()) + " fp32 FLOP/cycle x cores; memory: /proc/meminfo; runtime: " +
             t.at("runtime_source").get<std::string>();
  d.links = parse_links(t.at("links"));
  return d;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

const Device::Link* Device::link(const std::string& want) const {
  for (const auto& l : links) {
    if (l.name == want) return &l;
  }
  return nullptr;
}

std::vector<std::string> device_names() {
  std::vector<std::string> out;
  for (const auto& d : table().at("devices")) out.push_back(d.at("name").get<std::string>());
  out.emplace_back("cpu");
  return out;
}

Device device(const std::string& name) {
  if (name == "cpu") return cpu_device();
  for (const auto& j : table().at("devices")) {
    if (j.at("name").get<std::string>() != name) continue;
    Device d;
    d.name = name;
    d.description = j.at("description").get<std::string>();
    d.memory_bytes = j.at("memory_mib").get<double>() * kMiB;
    d.peak_flops_fp32 = j.at("peak_tflops_fp32").get<double>() * 1e12;
    d.peak_flops_bf16 = j.at("peak_tflops_bf16").get<double>() * 1e12;
    d.runtime_bytes = j.at("runtime_gib").get<double>() * kGiB;
    d.source = j.at("source").get<std::string>();
    d.links = parse_links(j.at("links"));
    return d;
  }
  std::string names;
  for (const auto& n : device_names()) names += (names.empty() ? "" : ", ") + n;
  throw ConfigError("plan: --gpu \"" + name + "\" is not in the device table (" + names +
                    "); add it to src/plan/hardware.json");
}

Estimate estimate(const ModelShape& m, const JobSpec& job, const RunSpec& run) {
  if (run.n < 1 || run.n > 4096) throw ConfigError("plan: --n must be between 1 and 4096, got " + std::to_string(run.n));
  if (job.batch < 1) throw ConfigError("plan: --batch must be >= 1, got " + std::to_string(job.batch));
  if (run.mfu <= 0 || run.mfu > 1) throw ConfigError("plan: --mfu must be in (0, 1], got " + fixed(run.mfu, 3));
  if (run.overlap < 0 || run.overlap > 1) throw ConfigError("plan: --overlap must be in [0, 1], got " + fixed(run.overlap, 3));
  if (run.grad_dtype != "fp32" && run.grad_dtype != "bf16") {
    throw ConfigError("plan: --grad-dtype must be fp32 or bf16, got \"" + run.grad_dtype + "\"");
  }
  const Device dev = device(run.device);
  Estimate e;
  e.dtype = run.dtype.empty() ? (dev.name != "cpu" && dev.peak_flops_bf16 > 0 ? "bf16" : "fp32") : run.dtype;
  if (e.dtype != "fp32" && e.dtype != "bf16") throw ConfigError("plan: --dtype must be fp32 or bf16, got \"" + e.dtype + "\"");
  if (e.dtype == "bf16" && dev.peak_flops_bf16 <= 0) {
    throw ConfigError("plan: --dtype bf16: " + dev.description + " has no bf16 arithmetic; use --dtype fp32");
  }
  if (!run.interconnect.empty() || run.n > 1) {
    const std::string want = run.interconnect.empty() ? dev.links.front().name : run.interconnect;
    const Device::Link* l = dev.link(want);
    if (l == nullptr) {
      std::string names;
      for (const auto& k : dev.links) names += (names.empty() ? "" : ", ") + k.name;
      throw ConfigError("plan: --interconnect " + want + ": " + dev.name + " has " + names + "; pick one of those");
    }
    e.link = *l;
  }
  const KernelTimes* probe = dev.name == "cpu" && !job.inference && !m.kernels.empty() ? run.measured : nullptr;
  if (probe != nullptr && run.n > 1 && probe->allreduce_bytes_per_s > 0 && e.link.name == "shm") {
    e.link.bandwidth_bytes = probe->allreduce_bytes_per_s;
    e.link.efficiency = 1;
    e.link.source = "measured here: Gloo's ring all-reduce of the step's gradient bytes between " +
                    std::to_string(run.n) + " process groups on 127.0.0.1 (the transport local ranks use)";
  }
  const bool bf16 = e.dtype == "bf16";
  const double P = static_cast<double>(m.params), B = static_cast<double>(job.batch);
  const double dense = m.sparse_embedding ? P - static_cast<double>(m.embedding_params) : P;
  // Row-sparse gradients of a bag model: the rows a batch touches (at most the table).
  const double width = m.embedding_params > 0 && job.features > 0
                           ? static_cast<double>(m.embedding_params) / static_cast<double>(job.features)
                           : 0;
  // With several ranks the reduced gradient holds the union of their rows (at most n times one
  // rank's, at most the table): it is what each rank all-reduces and what its optimizer updates.
  const double touched_rows =
      m.sparse_embedding ? std::min(static_cast<double>(std::max(run.n, job.ranks)) * static_cast<double>(rows_touched(job)),
                                    static_cast<double>(job.features))
                         : 0;
  const double grad_elem = run.grad_dtype == "bf16" ? 2 : 4;
  const double act_scale = bf16 ? 1.0 : 2.0;  // the shapes count 16-bit values
  if (job.inference) {
    e.params_bytes = P * (bf16 ? 2 : 4);
    e.activation_bytes = m.working_bytes_16 * act_scale * B;
    e.assumptions.push_back("inference: weights in " + e.dtype + ", no gradients or optimizer state; working "
                            "memory = the largest tensors live at once");
  } else {
    // fp32 master weights; under bf16 autocast the matmul weights are also cached in bf16.
    e.params_bytes = 4 * P + (bf16 ? 2 * (P - static_cast<double>(m.embedding_params)) : 0);
    e.grads_bytes = grad_elem * dense + 4 * touched_rows * width;
    e.optimizer_bytes = 8 * P;  // AdamW: first and second moments, fp32
    e.activation_bytes = ((m.activation_bytes_16 - m.mask_bytes) * act_scale + m.mask_bytes) * B;
    e.assumptions.push_back("AdamW: m and v in fp32 (8 bytes a parameter); fp32 master weights" +
                            std::string(bf16 ? " plus a bf16 copy of the matmul weights (autocast)" : ""));
  }
  const KernelTimes* measured = dev.name == "cpu" && !job.inference && !m.kernels.empty() ? run.measured : nullptr;
  e.runtime_bytes = measured != nullptr && measured->runtime_bytes > 0 ? measured->runtime_bytes : dev.runtime_bytes;
  if (measured != nullptr && measured->saved_bytes.size() == m.kernels.size()) {
    double kept = 0;
    for (std::size_t i = 0; i < m.kernels.size(); ++i) kept += m.kernels[i].count * measured->saved_bytes[i];
    e.activation_bytes = kept;
    e.assumptions.push_back("activations: what each of the step's ops leaves allocated from its forward pass to its "
                            "backward, measured here (malloc's in-use bytes)");
  }
  if (!job.inference && job.data_peak_bytes > 0) {
    // Each rank reads the whole file, fits the featurizer on it and keeps the encoded rows: the
    // peak of that, measured (a TF-IDF fit's vocabulary of every n-gram before pruning can be many
    // times the text).
    e.data_bytes = job.data_kept_bytes;
    e.assumptions.push_back("training data and featurizer: " + job.data_source + ": " +
                            fixed(job.data_kept_bytes / (1 << 20), 0) + " MiB kept for the run, " +
                            fixed(job.data_peak_bytes / (1 << 20), 0) + " MiB at the fit's peak");
  } else if (!job.inference && job.data_bytes_per_sample > 0) {
    // Each rank reads the whole file and keeps its shard's share of the encoded rows; the text as read
    // stays in memory for the whole run.
    e.data_bytes = job.data_bytes_per_sample * static_cast<double>(job.samples);
    e.assumptions.push_back("training data in memory: " + fixed(job.data_bytes_per_sample, 0) +
                            " bytes a sample (texts: twice the mean text length of the artifact's data profile plus "
                            "their encoding; images: float32 pixel_values)");
  }
  if (!job.inference) {
    // Kiln's trainer copies the weights at every epoch that improves on validation (every epoch
    // without a validation split) and restores the best at the end (src/train/checkpoint.cpp).
    e.best_weights_bytes = 4 * (P + static_cast<double>(m.buffers));
    e.assumptions.push_back("best weights: the trainer keeps a copy of the parameters and buffers (fp32) of the "
                            "best epoch, to restore at the end");
  }
  const double training_parts =
      e.params_bytes + e.grads_bytes + e.optimizer_bytes + e.activation_bytes + e.data_bytes + e.best_weights_bytes;
  if (!job.inference && job.data_peak_bytes > 0) e.fit_peak_extra_bytes = std::max(0.0, job.data_peak_bytes - training_parts);
  e.memory_per_device = e.runtime_bytes + training_parts + e.fit_peak_extra_bytes;
  const double memory = dev.name == "cpu" ? dev.memory_bytes / run.n : dev.memory_bytes;
  e.fits = e.memory_per_device <= memory;

  // Ranks on one CPU share its cores.
  const double peak = (bf16 ? dev.peak_flops_bf16 : dev.peak_flops_fp32) / (dev.name == "cpu" ? run.n : 1);
  e.flops_per_step = (job.inference ? 1.0 : 3.0) * m.forward_flops * B;
  if (measured != nullptr) {
    if (measured->forward_s.size() != m.kernels.size() || measured->backward_s.size() != m.kernels.size()) {
      throw ConfigError("plan: the kernel timings hold " + std::to_string(measured->forward_s.size()) +
                        " entries for " + std::to_string(m.kernels.size()) + " kernels; measure again");
    }
    double fwd = 0, bwd = 0;
    for (std::size_t i = 0; i < m.kernels.size(); ++i) {
      fwd += m.kernels[i].count * measured->forward_s[i];
      bwd += m.kernels[i].count * measured->backward_s[i];
    }
    e.compute_s = fwd + bwd;
    e.backward_s = bwd;
    e.measured = true;
    e.assumptions.push_back("time = the sum of the step's " + std::to_string(m.kernels.size()) +
                            " kinds of op, each timed on this machine at the job's shapes, forward and backward (" +
                            measured->source + "; achieved " + fixed(e.flops_per_step / e.compute_s / 1e9, 1) +
                            " GFLOP/s, " + fixed(100 * e.flops_per_step / e.compute_s / peak, 0) +
                            "% of the cpuid peak); --no-measure uses peak x MFU instead");
  } else {
    e.compute_s = e.flops_per_step / (peak * run.mfu);
    e.backward_s = job.inference ? 0 : e.compute_s * 2.0 / 3.0;
  }
  e.gradient_bytes = job.inference ? 0 : grad_elem * dense + touched_rows * (4 * width + 8);
  if (run.n > 1 && !job.inference) {
    const double n = run.n;
    e.allreduce_s = 2.0 * (n - 1) / n * e.gradient_bytes / (e.link.bandwidth_bytes * e.link.efficiency);
    if (probe != nullptr && probe->collective_latency_s > 0) {
      // A step runs more collectives than the one all-reduce timed at its bytes: the dense gradients'
      // buckets (one of at most 256 KiB beside a row-sparse table rides in the table's all-reduce),
      // and per row-sparse table an all-gather of row ids besides its all-reduce. Each further one
      // costs a small all-reduce's latency. The step's totals go out before backward and cost only
      // what backward does not hide.
      const double lat = probe->collective_latency_s;
      const double dense_bytes = grad_elem * dense;
      const bool rides = m.sparse_tables > 0 && dense_bytes <= 256.0 * 1024;
      const double buckets = dense_bytes > 0 && !rides ? std::ceil(dense_bytes / (25.0 * 1024 * 1024)) : 0;
      const double collectives = std::max(1.0, buckets + 2.0 * m.sparse_tables);
      const double totals = std::max(0.0, lat - e.backward_s);
      e.allreduce_s += (collectives - 1) * lat + totals;
      e.assumptions.push_back(fixed(collectives, 0) + " collectives a step after backward (" + fixed(buckets, 0) +
                              " gradient bucket(s) of 25 MiB" +
                              (m.sparse_tables > 0 ? std::string(", 2 per row-sparse table") +
                                                         (rides && dense_bytes > 0 ? ", the dense gradients riding in its all-reduce" : "")
                                                   : std::string()) +
                              "): each beyond the first adds the measured latency of a small all-reduce, " +
                              fixed(lat * 1e6, 0) + " us (the mean of 150 back to back between " +
                              std::to_string(run.n) + " processes); the step's totals, sent before backward, add " +
                              fixed(totals * 1e6, 0) + " us backward does not hide");
    }
  }
  // Ranks that fill every core of one machine leave no core to the all-reduce's threads: it
  // cannot run behind backward.
  double overlap = run.overlap;
  if (measured != nullptr && run.n > 1 &&
      measured->threads * run.n >= std::max(1, core::cpu_info().logical_cores) && overlap > 0) {
    overlap = 0;
    e.assumptions.push_back("overlap 0: " + std::to_string(run.n) + " ranks x " + std::to_string(measured->threads) +
                            " thread(s) fill this machine's " + std::to_string(core::cpu_info().logical_cores) +
                            " cores, so the all-reduce competes with compute instead of hiding behind backward");
  }
  e.exposed_comm_s = std::max(0.0, e.allreduce_s - overlap * e.backward_s);
  e.step_s = e.compute_s + e.exposed_comm_s;
  e.samples_per_s = run.n * B / e.step_s;
  e.speedup = run.n * e.compute_s / e.step_s;
  e.scaling_efficiency = e.speedup / run.n;
  const double per_step = B * run.n;
  e.steps_per_epoch = static_cast<int64_t>(std::ceil(static_cast<double>(job.samples) / per_step));
  e.total_s = static_cast<double>(job.epochs) * static_cast<double>(e.steps_per_epoch) * e.step_s;
  if (!e.measured) {
    e.assumptions.push_back("time = FLOPs / (peak x MFU " + fixed(run.mfu, 2) + "); peak " + fixed(peak / 1e12, 2) +
                            " TFLOP/s " + e.dtype + " from " + dev.source);
  }
  if (run.n > 1 && !job.inference) {
    e.assumptions.push_back("ring all-reduce T_c = 2(N-1)/N x gradient bytes / (" + fixed(e.link.bandwidth_bytes / 1e9, 1) +
                            " GB/s x " + fixed(e.link.efficiency, 2) + "): " + e.link.source);
    e.assumptions.push_back("exposed communication = max(0, T_c - overlap " + fixed(overlap, 2) +
                            " x backward); speed-up = N x T_step / (T_step + exposed)");
  }
  if (dev.name == "cpu" && run.n > 1) e.assumptions.push_back("ranks on one CPU share its cores and memory");
  return e;
}

nlohmann::json kernels_to_json(const std::vector<StepKernel>& kernels) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& k : kernels) {
    out.push_back({{"op", k.op}, {"dims", k.dims}, {"count", k.count}, {"backward", k.backward},
                   {"input_grad", k.input_grad}});
  }
  return out;
}

std::vector<StepKernel> kernels_from_json(const nlohmann::json& j) {
  std::vector<StepKernel> out;
  try {
    for (const auto& k : j.at("kernels")) {
      out.push_back({k.at("op").get<std::string>(), k.at("dims").get<std::vector<int64_t>>(), k.at("count").get<double>(),
                     k.at("backward").get<bool>(), k.at("input_grad").get<bool>()});
    }
  } catch (const nlohmann::json::exception&) {
    throw ConfigError("plan: the kernel list is not {\"kernels\": [{\"op\", \"dims\", \"count\", \"backward\", "
                      "\"input_grad\"}, ...]}");
  }
  return out;
}

KernelTimes kernel_times_from_json(const nlohmann::json& j, std::size_t kernels) {
  KernelTimes t;
  try {
    t.forward_s = j.at("forward_s").get<std::vector<double>>();
    t.backward_s = j.at("backward_s").get<std::vector<double>>();
    t.saved_bytes = j.at("saved_bytes").get<std::vector<double>>();
    t.runtime_bytes = j.at("runtime_bytes").get<double>();
    t.threads = j.at("threads").get<int>();
    t.source = j.at("source").get<std::string>();
    t.allreduce_bytes_per_s = j.value("allreduce_bytes_per_s", 0.0);
    t.collective_latency_s = j.value("collective_latency_s", 0.0);
  } catch (const nlohmann::json::exception&) {
    throw ConfigError("plan: the kernel timings are not {forward_s, backward_s, saved_bytes, runtime_bytes, threads, source}");
  }
  if (t.forward_s.size() != kernels || t.backward_s.size() != kernels || t.saved_bytes.size() != kernels) {
    throw ConfigError("plan: the kernel timings hold " + std::to_string(t.forward_s.size()) + " entries for " +
                      std::to_string(kernels) + " kernels");
  }
  return t;
}

}  // namespace kiln::plan
