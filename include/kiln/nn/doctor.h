// `kiln doctor`: what this machine and this build of Kiln run with (CPU, BLAS and its kernel core,
// LibTorch's build, threads, OpenMP policy), a short GEMM self-benchmark against the CPU's peak, and
// warnings for what is misconfigured.
#pragma once

#include <nlohmann/json.hpp>

namespace kiln::nn {

struct DoctorOptions {
  /// Threads for the self-benchmark (LibTorch intra-op); 0 = the process-wide count. Default 0.
  int threads = 0;
  /// Seconds spent on each GEMM benchmark (fp32, int8), at least one multiplication each. Default 1.
  double seconds_per_benchmark = 1.0;
  /// Side of the square matrices multiplied (n x n times n x n). Default 1024.
  int gemm_size = 1024;
  /// Skip the benchmarks (facts and warnings only). Default false.
  bool skip_benchmark = false;

  /// Throws ConfigError naming the field when out of range.
  void validate() const;
};

/// Facts, benchmark results and warnings as one JSON object. Keys (always present): cpu_model,
/// cpu_vendor, cpu_family, cpu_model_number, cpu_mhz, cpu_features, logical_cores, blas, blas_library,
/// blas_core, blas_config, blas_core_best, environment_set, environment_kept, reexecuted, libtorch,
/// cuda_available, cuda_devices, quantized_engines, mkldnn, aten_cpu_capability, threads,
/// interop_threads, omp_wait_policy, peak_fp32_gflops, peak_int8_gops, gemm_fp32_gflops,
/// gemm_int8_gops (null when skipped), warnings (array of strings).
[[nodiscard]] nlohmann::json run_doctor(const DoctorOptions& options);

}  // namespace kiln::nn
