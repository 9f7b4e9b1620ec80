// What the CPU can do (cpuid), which BLAS and kernel core the process runs with, and the one
// start-up function that makes a process use the fastest correct kernels without the user setting
// anything. Free of LibTorch: the `kiln` front binary uses it too.
#pragma once

#include <string>
#include <vector>

namespace kiln::core {

/// CPU facts from cpuid (x86-64; zeros and false elsewhere).
struct CpuInfo {
  std::string vendor;      ///< "GenuineIntel", "AuthenticAMD", ...
  std::string model_name;  ///< brand string, e.g. "Intel(R) Xeon(R) Processor"
  int family = 0;          ///< display family
  int model = 0;           ///< display model
  int logical_cores = 0;   ///< cores this process may run on
  double mhz = 0;          ///< nominal clock in MHz (cpufreq max, else /proc/cpuinfo), 0 when unknown
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool avx512_vnni = false, avx_vnni = false, avx512_bf16 = false, avx512_fp16 = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  /// The operating system saves AVX / AVX-512 / AMX state (XGETBV); without it the feature is unusable.
  bool os_avx = false, os_avx512 = false, os_amx = false;

  /// Feature names in cpuinfo spelling ("avx2", "avx512f", "avx512_vnni", "amx_int8", ...), usable ones only.
  [[nodiscard]] std::vector<std::string> features() const;
  /// AVX-512 F+DQ+BW+VL usable (what OpenBLAS's SkylakeX kernels and ATen's avx512 kernels need).
  [[nodiscard]] bool has_avx512_core() const { return avx512f && avx512dq && avx512bw && avx512vl && os_avx512; }
  [[nodiscard]] bool has_avx2_fma() const { return avx2 && fma && os_avx; }
  /// Peak fp32 FLOP/s per cycle per core: FMA width x 2 FMA ports x 2 (assumes two FMA units).
  [[nodiscard]] int fp32_flops_per_cycle() const;
  /// Peak int8 ops per cycle per core: AMX tiles where usable, else VNNI (vpdpbusd) width x 2 ports x 2,
  /// else the 16-bit multiply-add path.
  [[nodiscard]] int int8_ops_per_cycle() const;
};

/// Reads the CPU once (cached; thread-safe).
[[nodiscard]] const CpuInfo& cpu_info();

/// The clock this thread's core runs at now, in MHz, measured: a chain of dependent integer adds (one
/// cycle each on every x86 core) timed by the wall clock, the fastest of 20 runs of about 1 ms (a
/// run the scheduler interrupted reads slower). Virtual machines report their nominal clock in
/// /proc/cpuinfo and have no cpufreq: a core boosting above it would otherwise make a benchmark
/// read above the "peak". 0 where it cannot measure (not x86).
[[nodiscard]] double measure_core_mhz();

/// Kernel generations OpenBLAS knows, ordered by the instructions they use.
enum class BlasCoreLevel { kUnknown = 0, kSse = 1, kAvx = 2, kAvx2 = 3, kAvx512 = 4, kAvx512Bf16 = 5 };

/// The level of an OpenBLAS core name ("Prescott" -> kSse, "Haswell" -> kAvx2, "SkylakeX" -> kAvx512);
/// kUnknown for names Kiln does not know (left alone).
[[nodiscard]] BlasCoreLevel blas_core_level(const std::string& core_name);

/// The OpenBLAS 0.3.21 core type whose kernels are fastest and correct on `cpu`
/// ("Cooperlake", "SkylakeX", "Haswell", "Sandybridge"), or "" when OpenBLAS's own choice is best.
[[nodiscard]] std::string best_openblas_core(const CpuInfo& cpu);

/// The BLAS behind this process: the library file and, for OpenBLAS, its kernel core and config.
struct BlasInfo {
  std::string library;  ///< resolved path of the loaded (or loadable) libblas.so.3, "" when none
  std::string vendor;   ///< "OpenBLAS", "BLIS", "reference", "MKL" or "unknown"
  std::string core;     ///< OpenBLAS core name ("SkylakeX"), "" for other BLAS
  std::string config;   ///< openblas_get_config(), "" for other BLAS
};

/// Asks the BLAS this process has loaded, or loads libblas.so.3 to ask it (without keeping it).
[[nodiscard]] BlasInfo blas_info();

/// Caps the BLAS's own thread pool (OpenBLAS, BLIS) at `n` threads, process-wide: LibTorch's
/// at::set_num_threads does not reach it, so without this a one-thread workload (serving, --threads 1)
/// still runs every GEMM on all cores. Returns false when no such BLAS is loaded (nothing to cap).
bool set_blas_threads(int n);

/// Sets the OpenMP team size of the calling thread's parallel regions (LibTorch's intra-op loops)
/// to `n`, for this thread only: at::set_num_threads also changes what threads started later take.
/// On a thread that has not run a LibTorch parallel loop yet, run one first (at::parallel_for over
/// one element): LibTorch's lazy per-thread set-up in its first loop would undo this. Returns false when no OpenMP runtime is loaded.
bool set_openmp_threads(int n);

/// What prepare_process() decided, for `kiln doctor` and logs.
struct ProcessTuning {
  std::vector<std::string> set;  ///< "NAME=value" Kiln put in the environment
  std::vector<std::string> kept; ///< "NAME=value" the user set (always wins)
  bool reexecuted = false;       ///< this process re-executed itself to load the libraries again
};

/// Call first in main() of every program that links LibTorch or OpenBLAS (and in the `kiln` front
/// binary, before it starts kiln-ml). Sets the environment the BLAS and OpenMP runtimes read when
/// they load: OPENBLAS_CORETYPE where OpenBLAS picked weaker kernels than the CPU supports, and
/// OMP_WAIT_POLICY=PASSIVE (no OpenMP threads spin-waiting against OpenBLAS's threads or the HTTP
/// server). Variables the user set are kept. When those libraries were already loaded with other
/// values, re-executes the process once (/proc/self/exe, same argv) so they load again with them;
/// KILN_NO_TUNE_ENV=1 turns all of this off. Returns what it did (in the re-executed process too).
ProcessTuning prepare_process(char** argv);

/// What prepare_process() did in this process (empty before it ran).
[[nodiscard]] const ProcessTuning& process_tuning();

}  // namespace kiln::core
