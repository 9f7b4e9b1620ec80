#include "kiln/nn/doctor.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <link.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/nn/int8_linear.h"

namespace kiln::nn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Runs `fn` once to warm up, then repeatedly for at least `seconds` (and at least once); returns the
/// best single-call time in seconds (the least disturbed by other processes).
template <class F>
double best_time(double seconds, F&& fn) {
  fn();
  double best = 1e30;
  const auto start = Clock::now();
  do {
    const auto t = Clock::now();
    fn();
    best = std::min(best, seconds_since(t));
  } while (seconds_since(start) < seconds);
  return best;
}

double gemm_fp32_gflops(int n, double seconds) {
  torch::InferenceMode guard;
  torch::manual_seed(0);
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  const double t = best_time(seconds, [&] { torch::mm_out(c, a, b); });
  return 2.0 * n * n * n / t / 1e9;
}

/// int8 GEMM through LibTorch's quantized linear (u8 activations x s8 weights, int32 accumulation,
/// requantized output), on the best quantized engine present (oneDNN on x86, else QNNPACK): what a
/// served int8 linear layer runs. Weights are packed once, outside the timing.
double gemm_int8_gops(int n, double seconds) {
  torch::InferenceMode guard;
  auto& ctx = at::globalContext();
  const auto& engines = ctx.supportedQEngines();
  const bool onednn = std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end();
  const bool qnnpack = std::find(engines.begin(), engines.end(), at::QEngine::QNNPACK) != engines.end();
  if (!onednn && !qnnpack) throw std::runtime_error("no quantized engine (oneDNN, QNNPACK) in this LibTorch");
  const auto saved = ctx.qEngine();
  ctx.setQEngine(onednn ? at::QEngine::ONEDNN : at::QEngine::QNNPACK);
  torch::manual_seed(0);
  const auto x = torch::quantize_per_tensor(torch::rand({n, n}), 1.0 / 255, 0, torch::kQUInt8);
  const auto w = torch::quantize_per_tensor(torch::randn({n, n}), 4.0 / 127, 0, torch::kQInt8);
  auto& dispatcher = c10::Dispatcher::singleton();
  const auto& prepack = dispatcher.findSchemaOrThrow("quantized::linear_prepack", "");
  const auto& linear = dispatcher.findSchemaOrThrow("quantized::linear", "");
  torch::jit::Stack stack{w, c10::IValue()};
  prepack.callBoxed(&stack);
  const c10::IValue packed = stack.at(0);
  double t = 0;
  try {
    t = best_time(seconds, [&] {
      torch::jit::Stack s{x, packed, 0.5, static_cast<int64_t>(64)};
      linear.callBoxed(&s);
    });
  } catch (...) {
    ctx.setQEngine(saved);
    throw;
  }
  ctx.setQEngine(saved);
  return 2.0 * n * n * n / t / 1e9;
}

/// "avx2" from show_config()'s "CPU capability usage: AVX2" (ATen's kernel dispatch level).
std::string aten_capability(const std::string& config) {
  const std::string key = "CPU capability usage: ";
  const auto at = config.find(key);
  if (at == std::string::npos) return "unknown";
  std::string v = config.substr(at + key.size(), config.find('\n', at) - at - key.size());
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

}  // namespace

void DoctorOptions::validate() const {
  if (threads < 0) throw ConfigError("doctor.threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  if (!(seconds_per_benchmark > 0 && seconds_per_benchmark <= 60)) {
    std::ostringstream v;
    v << seconds_per_benchmark;
    throw ConfigError("doctor.seconds_per_benchmark must be in (0, 60], got " + v.str() + "; pass --seconds 2");
  }
  if (gemm_size < 16 || gemm_size > 8192) {
    throw ConfigError("doctor.gemm_size must be in [16, 8192], got " + std::to_string(gemm_size));
  }
}

nlohmann::json run_doctor(const DoctorOptions& options) {
  options.validate();
  const auto& cpu = core::cpu_info();
  const auto blas = core::blas_info();
  const auto& tuning = core::process_tuning();
  nlohmann::json j;
  nlohmann::json warnings = nlohmann::json::array();

  j["cpu_model"] = cpu.model_name;
  j["cpu_vendor"] = cpu.vendor;
  j["cpu_family"] = cpu.family;
  j["cpu_model_number"] = cpu.model;
  j["cpu_mhz"] = cpu.mhz;
  j["cpu_features"] = cpu.features();
  j["logical_cores"] = cpu.logical_cores;

  j["blas"] = blas.vendor;
  j["blas_library"] = blas.library;
  j["blas_core"] = blas.core;
  j["blas_config"] = blas.config;
  j["blas_core_best"] = core::best_openblas_core(cpu);
  j["environment_set"] = tuning.set;
  j["environment_kept"] = tuning.kept;
  j["reexecuted"] = tuning.reexecuted;
  if (blas.vendor == "reference") {
    warnings.push_back("libblas.so.3 is the reference BLAS (" + blas.library +
                       "), about 40x slower than OpenBLAS; fix: sudo update-alternatives --set "
                       "libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
  } else if (blas.vendor == "OpenBLAS") {
    const auto chosen = core::blas_core_level(blas.core);
    const auto best = core::blas_core_level(core::best_openblas_core(cpu));
    if (chosen != core::BlasCoreLevel::kUnknown && best > chosen) {
      warnings.push_back("OpenBLAS runs its generic '" + blas.core + "' kernels on a CPU that supports '" +
                         core::best_openblas_core(cpu) +
                         "'; unset OPENBLAS_CORETYPE (Kiln then picks the best) or set it to " +
                         core::best_openblas_core(cpu));
    }
  } else if (blas.vendor == "unknown" || blas.library.empty()) {
    warnings.push_back("could not identify the BLAS library" +
                       (blas.library.empty() ? std::string() : " (" + blas.library + ")"));
  }

  j["libtorch"] = TORCH_VERSION;
  // The shared libraries this process loaded, and how many are the empty stand-ins the build made
  // for LibTorch's unused ones (cmake/torch_unused_libs.sh; each real one brings others with it).
  struct Loaded {
    int total = 0, stand_ins = 0;
  } loaded;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* l = static_cast<Loaded*>(data);
        ++l->total;
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "/torch-unused-libs/") != nullptr) ++l->stand_ins;
        return 0;
      },
      &loaded);
  j["shared_libraries"] = loaded.total;
  j["torch_unused_lib_stand_ins"] = loaded.stand_ins;
  const bool cuda = torch::cuda::is_available();
  j["cuda_available"] = cuda;
  j["cuda_devices"] = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  const std::string torch_config = at::show_config();
  const bool cuda_build = torch_config.find("USE_CUDA=ON") != std::string::npos ||
                          torch_config.find("USE_CUDA=1") != std::string::npos;
  j["libtorch_cuda_build"] = cuda_build;
  if (cuda_build && !cuda) warnings.push_back("this Kiln is built on a CUDA LibTorch but no GPU is visible; check the driver "
                                "(nvidia-smi) and CUDA_VISIBLE_DEVICES");
  nlohmann::json engines = nlohmann::json::array();
  for (const auto e : at::globalContext().supportedQEngines()) engines.push_back(c10::toString(e));
  j["quantized_engines"] = engines;
  const std::string engine = nn::select_quantized_engine();
  j["quantized_engine"] = engine;
  // 7 on x86 without VNNI, where 8-bit activations saturate the int8 kernels (int8_needs_reduced_range).
  j["int8_activation_bits"] = engine.empty() ? nlohmann::json(nullptr) : nlohmann::json(nn::int8_reduced_range() ? 7 : 8);
  j["mkldnn"] = at::hasMKLDNN();
  j["aten_cpu_capability"] = aten_capability(torch_config);

  const int threads = options.threads > 0 ? options.threads : core::threads();
  const int saved_threads = at::get_num_threads();
  at::set_num_threads(threads);
  core::set_blas_threads(threads);
  j["threads"] = threads;
  j["interop_threads"] = at::get_num_interop_threads();
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  j["omp_wait_policy"] = wait ? wait : "(OpenMP default: active spin, then sleep)";
  if (!wait) warnings.push_back("OMP_WAIT_POLICY is unset: LibTorch's OpenMP threads spin between operations");

  // The clock the peak counts: the nominal one, or the measured one where the core runs faster (a
  // boosting core in a virtual machine, whose /proc/cpuinfo shows the nominal clock).
  const double measured_mhz = core::measure_core_mhz();
  j["cpu_mhz_measured"] = measured_mhz;
  const double mhz = std::max(cpu.mhz > 0 ? cpu.mhz : 0, measured_mhz);
  j["peak_mhz"] = mhz;
  j["peak_fp32_gflops"] = mhz * 1e-3 * cpu.fp32_flops_per_cycle() * threads;
  j["peak_int8_gops"] = mhz * 1e-3 * cpu.int8_ops_per_cycle() * threads;
  j["peak_note"] = "peak = clock (the nominal or the measured one, whichever is higher) x cores used x per-core "
                   "rate from the CPU's features (two FMA units assumed; "
                   "int8 on AMX tiles where present, else VNNI vector units)";
  if (options.skip_benchmark) {
    j["gemm_fp32_gflops"] = nullptr;
    j["gemm_int8_gops"] = nullptr;
  } else {
    j["gemm_size"] = options.gemm_size;
    j["gemm_fp32_gflops"] = gemm_fp32_gflops(options.gemm_size, options.seconds_per_benchmark);
    try {
      j["gemm_int8_gops"] = gemm_int8_gops(options.gemm_size, options.seconds_per_benchmark);
    } catch (const c10::Error& e) {
      j["gemm_int8_gops"] = nullptr;
      warnings.push_back(std::string("int8 GEMM unavailable in this LibTorch: ") + e.what_without_backtrace());
    } catch (const std::runtime_error& e) {
      j["gemm_int8_gops"] = nullptr;
      warnings.push_back(std::string("int8 GEMM unavailable: ") + e.what());
    }
    const double peak = j["peak_fp32_gflops"].get<double>();
    if (peak > 0 && j["gemm_fp32_gflops"].get<double>() < 0.3 * peak) {
      warnings.push_back("fp32 GEMM reaches under 30% of the CPU's peak; another process may be using the cores, "
                         "or the BLAS kernels are generic");
    }
  }
  at::set_num_threads(saved_threads);
  core::set_blas_threads(saved_threads);
  j["warnings"] = warnings;
  return j;
}

}  // namespace kiln::nn
