#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/nn/doctor.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

std::string join(const nlohmann::json& list) {
  std::string out;
  for (const auto& v : list) out += (out.empty() ? "" : " ") + v.get<std::string>();
  return out.empty() ? "-" : out;
}

std::string number(const nlohmann::json& v, int precision = 1) {
  if (v.is_null()) return "skipped";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v.get<double>();
  return s.str();
}

std::string percent_of(const nlohmann::json& v, const nlohmann::json& peak) {
  if (v.is_null() || peak.get<double>() <= 0) return "";
  return " (" + number(nlohmann::json(100.0 * v.get<double>() / peak.get<double>()), 0) + "% of peak " +
         number(peak, 0) + ")";
}

void print_text(const nlohmann::json& j) {
  std::cout << "cpu          " << j["cpu_model"].get<std::string>() << " (" << j["cpu_vendor"].get<std::string>()
            << ", family " << j["cpu_family"] << " model " << j["cpu_model_number"] << ", "
            << number(j["cpu_mhz"], 0) << " MHz nominal, " << number(j["cpu_mhz_measured"], 0) << " MHz measured, "
            << j["logical_cores"] << " logical cores)\n"
            << "features     " << join(j["cpu_features"]) << "\n"
            << "blas         " << j["blas"].get<std::string>() << " " << j["blas_library"].get<std::string>() << "\n"
            << "blas core    " << (j["blas_core"].get<std::string>().empty() ? "-" : j["blas_core"].get<std::string>())
            << " (best for this CPU: " << (j["blas_core_best"].get<std::string>().empty() ? "OpenBLAS's own choice"
                                                                                        : j["blas_core_best"].get<std::string>())
            << ")\n"
            << "environment  set by Kiln: " << join(j["environment_set"]) << "; kept from you: "
            << join(j["environment_kept"]) << "\n"
            << "libtorch     " << j["libtorch"].get<std::string>() << ", CUDA "
            << (j["cuda_available"].get<bool>() ? std::to_string(j["cuda_devices"].get<int>()) + " device(s)"
                                                : std::string(j["libtorch_cuda_build"].get<bool>() ? "build, no device" : "no"))
            << ", quantized engines " << join(j["quantized_engines"])
            << (j["int8_activation_bits"].is_number()
                    ? " (int8 runs on " + j["quantized_engine"].get<std::string>() + ", " +
                          std::to_string(j["int8_activation_bits"].get<int>()) + "-bit activations)"
                    : std::string())
            << ", oneDNN "
            << (j["mkldnn"].get<bool>() ? "yes" : "no") << ", ATen kernels " << j["aten_cpu_capability"].get<std::string>()
            << "\n"
            << "libraries    " << j["shared_libraries"] << " loaded, " << j["torch_unused_lib_stand_ins"]
            << " of them empty stand-ins for libraries LibTorch lists but never calls\n"
            << "threads      " << j["threads"] << " intra-op, " << j["interop_threads"] << " inter-op; OMP_WAIT_POLICY "
            << j["omp_wait_policy"].get<std::string>() << "\n";
  if (j.contains("gemm_size")) {
    std::cout << "gemm fp32    " << number(j["gemm_fp32_gflops"]) << " GFLOP/s" << percent_of(j["gemm_fp32_gflops"], j["peak_fp32_gflops"])
              << ", " << j["gemm_size"] << "^3\n"
              << "gemm int8    " << number(j["gemm_int8_gops"]) << " GOP/s" << percent_of(j["gemm_int8_gops"], j["peak_int8_gops"])
              << "\n";
  }
  for (const auto& w : j["warnings"]) std::cout << "warning: " << w.get<std::string>() << "\n";
  if (j["warnings"].empty()) std::cout << "ok: nothing misconfigured found\n";
}

}  // namespace

void add_doctor(CLI::App& app) {
  struct Flags {
    nn::DoctorOptions options;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("doctor", ml_verb_description("doctor"));
  cmd->add_flag("--json", f->json, "Print one JSON object instead of text");
  cmd->add_option("--seconds", f->options.seconds_per_benchmark, "Seconds per GEMM benchmark (fp32, int8)")
      ->capture_default_str();
  cmd->add_option("--size", f->options.gemm_size, "Matrix side of the GEMM benchmark")->capture_default_str();
  cmd->add_flag("--no-bench", f->options.skip_benchmark, "Skip the benchmarks");
  cmd->callback([f]() {
    const auto report = nn::run_doctor(f->options);
    if (f->json) {
      std::cout << report.dump(2) << "\n";
    } else {
      print_text(report);
    }
  });
}

}  // namespace kiln::cli
