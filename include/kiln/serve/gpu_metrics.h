// GPU utilization, memory and temperature through NVML, loaded at run time (dlopen of
// libnvidia-ml.so.1): CPU-only machines need nothing and simply report no GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::serve {

struct GpuSample {
  int index = 0;
  std::string name;
  double utilization_ratio = 0;  ///< busy share of the last sample period, in [0, 1]
  double memory_used_bytes = 0;
  double memory_total_bytes = 0;
  double temperature_celsius = 0;
};

/// Thread-safe (NVML calls are serialized).
class GpuMonitor {
 public:
  /// Tries to load NVML; never throws. available() says whether it worked and why_unavailable() why not.
  GpuMonitor();
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  [[nodiscard]] bool available() const;
  [[nodiscard]] const std::string& why_unavailable() const;
  /// One sample per GPU (empty when unavailable or when a query fails).
  [[nodiscard]] std::vector<GpuSample> sample() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serve
