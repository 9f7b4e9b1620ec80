// The server's Prometheus metric families (names and meanings in docs/monitoring.md), registered
// once; the server keeps the children's values current and mirrors outside state at collect time.
#pragma once

#include <cstddef>

#include "kiln/serve/metrics.h"

namespace kiln::serve {

/// Thread-safe (the families are). The pointers are set by the constructor and live as long as it.
struct ServerMetrics {
  /// `max_batch`: the largest forward pass (batch-size buckets); `gpu`: register the NVML gauges.
  ServerMetrics(std::size_t max_batch, bool gpu);
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  MetricsRegistry registry;
  Counter* requests = nullptr;
  Counter* errors = nullptr;
  Counter* texts = nullptr;
  Counter* predictions = nullptr;
  Counter* reloads = nullptr;
  Counter* connections_accepted = nullptr;
  Counter* connections_rejected = nullptr;
  Counter* connection_timeouts = nullptr;
  Gauge* connections_open = nullptr;
  Histogram* duration = nullptr;
  Histogram* batch_size = nullptr;
  Histogram* confidence = nullptr;
  Gauge* queue_depth = nullptr;
  Gauge* model_info = nullptr;
  Gauge* drift_psi = nullptr;
  Gauge* drift_oov = nullptr;
  Gauge* drift_shift = nullptr;
  Gauge* drift_window = nullptr;
  Gauge* importance_shift = nullptr;
  Gauge* drift_intensity = nullptr;
  Gauge* ready = nullptr;
  Gauge* gpu_util = nullptr;
  Gauge* gpu_mem_used = nullptr;
  Gauge* gpu_mem_total = nullptr;
  Gauge* gpu_temp = nullptr;
};

}  // namespace kiln::serve
