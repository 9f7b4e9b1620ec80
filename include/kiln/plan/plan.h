// kiln plan: memory and time estimates of a training (or inference) job per model, device and
// device count, with data-parallel scaling from a ring all-reduce model. Free of LibTorch: model
// sizes are counted from the families' layouts (tests check them against the built models).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::plan {

/// One LibTorch op of a training step at the job's shapes, for `kiln plan --gpu cpu`, which times
/// each on this machine (forward, and backward through autograd) instead of assuming an MFU.
/// ops and dims: linear {M, K, N} (x[M,K]·Wᵀ + b), matmul {batch, m, k, n}, softmax {rows, cols}
/// (after adding a broadcast mask), layer_norm {rows, H} (after a residual add), gelu/relu/tanh/dropout/
/// scale/copy {elements}, embedding {table rows, width, lookups}, embedding_bag {table rows, width,
/// bags, ids per bag, distinct rows the ids fall in} (sum, row-sparse gradient), cross_entropy {rows, classes}, adamw {parameters}
/// (Kiln's fused AdamW update), adamw_rows {table rows, width, updated rows} (the row-sparse AdamW
/// update of a bag model's table: scattered rows of the weights and both moments), grad_norm {elements} (clipping's norm and scale), add {elements} (a
/// residual sum), conv2d {batch, c_in, h, w, c_out, k, stride, padding} (no bias), batch_norm {batch,
/// c, h, w} (training mode), max_pool {batch, c, h, w} (3x3, stride 2, padding 1), mean_pool {batch, c,
/// h, w} (global average).
struct StepKernel {
  std::string op;
  std::vector<int64_t> dims;
  double count = 1;         ///< times per step
  bool backward = true;     ///< autograd also runs its backward
  bool input_grad = true;   ///< linear/matmul/embedding_bag: the input needs a gradient too
};

/// What `kiln-ml` measured for a step's kernels (StepKernel order), at the threads one rank gets.
struct KernelTimes {
  std::vector<double> forward_s, backward_s;  ///< per call
  std::vector<double> saved_bytes;            ///< left allocated by one forward call until its backward
  double runtime_bytes = 0;                   ///< resident memory with LibTorch loaded, before any data
  int threads = 1;
  /// Gloo's ring all-reduce of the step's gradient bytes between the ranks on 127.0.0.1, as the
  /// bandwidth the ring formula needs (0: not measured)
  double allreduce_bytes_per_s = 0;
  /// The same groups' all-reduce of 8 floats: the fixed cost of each further collective of a step
  /// (the rest of the gradient buckets, the step's totals, a row-sparse table's two all-gathers).
  double collective_latency_s = 0;
  std::string source;                         ///< how it was measured (printed)
};

/// One layer group of a model's layout, as the estimate sees it.
struct ModelShape {
  std::string name;    ///< "bert-base", "resnet18", "mlp", ... or the config/artifact it came from
  std::string family;  ///< "bert", "cnn", "mlp", "embedbag", "linear"
  int64_t params = 0;            ///< trainable parameters
  int64_t embedding_params = 0;  ///< of which in lookup tables (no FLOPs, sparse gradients in bag models)
  int64_t buffers = 0;           ///< non-trainable tensors (BatchNorm running statistics)
  /// Forward FLOPs of one example (multiply-add = 2 FLOPs), at the request's sequence length / image size.
  double forward_flops = 0;
  /// Activation bytes kept for backward per example, in 16-bit precision with dropout masks of one
  /// byte (scaled by the estimate to the activation dtype).
  double activation_bytes_16 = 0;
  /// Of those, the bytes that are one-byte dropout masks (not scaled by the dtype).
  double mask_bytes = 0;
  /// Inference: the largest tensors live at once per example (16-bit), as nothing is kept for backward.
  double working_bytes_16 = 0;
  /// Bag models: only the rows an example touches get gradients and optimizer updates.
  bool sparse_embedding = false;
  std::vector<std::string> notes;  ///< what the counts assume (printed)
  /// The ops of one training step at the job's batch (empty: a family kiln plan does not time yet).
  std::vector<StepKernel> kernels;
  /// Row-sparse tables (bag models' first layer): each is reduced by two all-gathers of row ids and
  /// an all-reduce of the union's rows (src/train/data_parallel.cpp).
  int sparse_tables = 0;
};

/// What the job looks like. Every field has the CLI flag's default.
struct JobSpec {
  int64_t seq_len = 128;     ///< tokens per text (bag models: non-zero features per text)
  int64_t batch = 32;        ///< per device
  int64_t samples = 100000;  ///< per epoch
  int64_t epochs = 1;
  int64_t classes = 2;
  int64_t image_size = 0;    ///< 0: the preset's default (224 for resnet18, 28 for cnn-small)
  int64_t features = 50000;  ///< bag models' input dimension (TF-IDF vocabulary)
  int64_t vocab_size = 30522;
  bool inference = false;    ///< forward only: no gradients, no optimizer state, no kept activations
  double dropout = 0.1;      ///< > 0: masks are kept for backward
  /// Bag models: distinct table rows one batch (per device) touches; 0 = min(batch x seq_len, features),
  /// the most it can be. Text's features follow Zipf's law, so a batch's texts share many of them.
  int64_t rows_per_batch = 0;
  /// Data-parallel ranks: a bag model's reduced gradient, which the optimizer updates, holds the
  /// union of their rows (at most ranks x rows_touched, at most the table).
  int ranks = 1;
  /// Bytes of training data the job holds in memory per sample (the text as read, and its copy with
  /// known labels); 0 = unknown. An artifact's data profile gives its mean text length.
  double data_bytes_per_sample = 0;
  /// Bytes reading, fitting and encoding the training data was measured to add (kiln plan --data);
  /// replaces data_bytes_per_sample's estimate when > 0. data_source says how it was measured.
  double data_peak_bytes = 0;
  /// Of those, what stays for the whole run (the rows as read and encoded): the rest is the fit's
  /// transient, which the training's own allocations reuse once it is freed.
  double data_kept_bytes = 0;
  std::string data_source;
};

/// A device type from the hardware table (src/plan/hardware.json), or this machine's CPU.
struct Device {
  std::string name;
  std::string description;
  double memory_bytes = 0;
  double peak_flops_fp32 = 0;
  double peak_flops_bf16 = 0;   ///< 0: no bf16 arithmetic
  double runtime_bytes = 0;     ///< framework/runtime memory outside the model (context, workspace)
  std::string source;           ///< where the figures come from
  struct Link {
    std::string name;           ///< "pcie", "nvlink", "ib", "shm"
    double bandwidth_bytes = 0; ///< per direction, per device
    double efficiency = 0;      ///< achieved fraction in a ring all-reduce
    std::string source;
  };
  std::vector<Link> links;
  [[nodiscard]] const Link* link(const std::string& name) const;
};

/// Devices in the hardware table plus "cpu" (this machine, from cpuid and /proc/meminfo).
[[nodiscard]] std::vector<std::string> device_names();
/// Throws ConfigError naming the known devices for an unknown name.
[[nodiscard]] Device device(const std::string& name);

/// Bag models: the distinct table rows one batch touches (JobSpec::rows_per_batch, else its bound).
[[nodiscard]] int64_t rows_touched(const JobSpec& job);

/// Model presets: bert-tiny ... bert-large, resnet18, cnn-small, mlp, embedbag, linear.
[[nodiscard]] std::vector<std::string> model_presets();
/// A preset's shape for `job` (sequence length, classes, image size, features).
[[nodiscard]] ModelShape preset_shape(const std::string& preset, const JobSpec& job);
/// The shape of a model spec {"family": ..., "params": {...}} (a run config's `model:` section or
/// an artifact's kiln.json `model`); `where` names the file in errors.
[[nodiscard]] ModelShape spec_shape(const nlohmann::json& model_spec, const JobSpec& job, const std::string& where);
/// --model: a preset name, a run config (.yaml/.yml) or an artifact directory (holding kiln.json).
[[nodiscard]] ModelShape resolve_model(const std::string& model, JobSpec& job);

/// How the job runs.
struct RunSpec {
  std::string device = "cpu";
  int n = 1;                        ///< data-parallel ranks
  std::string interconnect;         ///< "" = the device's first link
  double overlap = 0.9;             ///< share of backward time the all-reduce can hide behind
  std::string grad_dtype = "fp32";  ///< or "bf16"
  std::string dtype;                ///< "" = bf16 where the device has it (mixed precision), else fp32
  double mfu = 0.4;                 ///< achieved share of peak FLOP/s
  /// The cpu device's step kernels timed on this machine (kiln plan --gpu cpu, unless --no-measure):
  /// step time is their sum, not FLOPs over peak x MFU.
  const KernelTimes* measured = nullptr;
};

struct Estimate {
  // Memory per device, bytes.
  double params_bytes = 0, grads_bytes = 0, optimizer_bytes = 0, activation_bytes = 0, runtime_bytes = 0;
  double data_bytes = 0;  ///< the training data held in memory (JobSpec::data_bytes_per_sample x samples / n)
  /// The best epoch's weights the trainer keeps to restore at the end (a copy of the parameters and
  /// buffers, where they live).
  double best_weights_bytes = 0;
  /// kiln plan --data: how far the featurizer's fit rose above what training holds afterwards (its
  /// peak minus the kept data and every part above, when positive): the process's peak is the larger.
  double fit_peak_extra_bytes = 0;
  double memory_per_device = 0;
  bool fits = true;
  // Time.
  double flops_per_step = 0;     ///< per device
  double compute_s = 0;          ///< one step's compute on one device
  double backward_s = 0;         ///< the backward share of compute_s
  double allreduce_s = 0;        ///< ring all-reduce of the gradients, T_c
  double exposed_comm_s = 0;     ///< max(0, T_c - overlap * backward)
  double step_s = 0;             ///< compute + exposed communication
  double samples_per_s = 0;      ///< all devices
  double speedup = 1;            ///< N devices vs 1 at the same per-device batch
  double scaling_efficiency = 1; ///< speedup / N
  double total_s = 0;            ///< epochs x samples
  int64_t steps_per_epoch = 0;
  double gradient_bytes = 0;     ///< all-reduced per step
  bool measured = false;         ///< compute_s is the sum of the step's kernels timed on this machine
  std::string dtype;
  Device::Link link;
  std::vector<std::string> assumptions;  ///< printed with their sources
};

/// The step's kernels as JSON (the input of the timing probe) and the probe's answer back.
[[nodiscard]] nlohmann::json kernels_to_json(const std::vector<StepKernel>& kernels);
[[nodiscard]] std::vector<StepKernel> kernels_from_json(const nlohmann::json& j);
/// Throws ConfigError when `j` does not hold one forward and one backward time per kernel.
[[nodiscard]] KernelTimes kernel_times_from_json(const nlohmann::json& j, std::size_t kernels);

/// The estimate. Throws ConfigError for inconsistent requests (an interconnect the device lacks,
/// bf16 on a device without it, n < 1, ...), naming the flag.
[[nodiscard]] Estimate estimate(const ModelShape& model, const JobSpec& job, const RunSpec& run);

/// The estimate as JSON: memory_per_gpu_bytes (and parts), step_time_s, samples_per_s, speedup,
/// scaling_efficiency, ...
[[nodiscard]] nlohmann::json to_json(const ModelShape& model, const JobSpec& job, const RunSpec& run,
                                     const Estimate& e);
/// The human-readable report of one estimate.
[[nodiscard]] std::string format_estimate(const ModelShape& model, const JobSpec& job, const RunSpec& run,
                                          const Estimate& e);
/// `kiln plan --table`: small/medium/large × 1/4/8 devices, and 8 devices over PCIe vs NVLink with
/// the batch at which the formula gives the flow's 6.8x.
[[nodiscard]] std::string format_table(const JobSpec& job, const RunSpec& run);

}  // namespace kiln::plan
