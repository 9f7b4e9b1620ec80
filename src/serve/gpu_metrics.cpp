#include "kiln/serve/gpu_metrics.h"

#include <dlfcn.h>

#include <mutex>

namespace kiln::serve {

namespace {

// The few NVML types and entry points used, as declared in nvml.h (stable C ABI, versioned names).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr int kNvmlTemperatureGpu = 0;

}  // namespace

struct GpuMonitor::Impl {
  void* lib = nullptr;
  std::string why;
  mutable std::mutex mu;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, NvmlUtilization*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;

  template <typename F>
  bool load(F& fn, const char* symbol) {
    fn = reinterpret_cast<F>(dlsym(lib, symbol));
    if (!fn) why = std::string("libnvidia-ml.so.1 lacks ") + symbol;
    return fn != nullptr;
  }
};

GpuMonitor::GpuMonitor() : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!m.lib) {
    m.why = "NVML (libnvidia-ml.so.1) not found: no NVIDIA driver on this machine";
    return;
  }
  const bool ok = m.load(m.init, "nvmlInit_v2") && m.load(m.shutdown, "nvmlShutdown") &&
                  m.load(m.count, "nvmlDeviceGetCount_v2") && m.load(m.handle, "nvmlDeviceGetHandleByIndex_v2") &&
                  m.load(m.name, "nvmlDeviceGetName") && m.load(m.utilization, "nvmlDeviceGetUtilizationRates") &&
                  m.load(m.memory, "nvmlDeviceGetMemoryInfo") && m.load(m.temperature, "nvmlDeviceGetTemperature");
  if (ok && m.init() != kNvmlSuccess) {
    m.why = "nvmlInit failed: the NVIDIA driver is not loaded";
  } else if (ok) {
    return;
  }
  dlclose(m.lib);
  m.lib = nullptr;
}

GpuMonitor::~GpuMonitor() {
  if (impl_ && impl_->lib) {
    impl_->shutdown();
    dlclose(impl_->lib);
  }
}

bool GpuMonitor::available() const { return impl_->lib != nullptr; }
const std::string& GpuMonitor::why_unavailable() const { return impl_->why; }

std::vector<GpuSample> GpuMonitor::sample() const {
  std::vector<GpuSample> out;
  const auto& m = *impl_;
  if (!m.lib) return out;
  std::lock_guard<std::mutex> lock(m.mu);
  unsigned int n = 0;
  if (m.count(&n) != kNvmlSuccess) return out;
  for (unsigned int i = 0; i < n; ++i) {
    nvmlDevice_t dev = nullptr;
    if (m.handle(i, &dev) != kNvmlSuccess) continue;
    GpuSample s;
    s.index = static_cast<int>(i);
    char name[96] = {0};
    if (m.name(dev, name, sizeof(name)) == kNvmlSuccess) s.name = name;
    NvmlUtilization u{};
    if (m.utilization(dev, &u) == kNvmlSuccess) s.utilization_ratio = u.gpu / 100.0;
    NvmlMemory mem{};
    if (m.memory(dev, &mem) == kNvmlSuccess) {
      s.memory_used_bytes = static_cast<double>(mem.used);
      s.memory_total_bytes = static_cast<double>(mem.total);
    }
    unsigned int t = 0;
    if (m.temperature(dev, kNvmlTemperatureGpu, &t) == kNvmlSuccess) s.temperature_celsius = t;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace kiln::serve
