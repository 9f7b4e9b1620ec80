#include "server_metrics.h"

#include <algorithm>

namespace kiln::serve {

ServerMetrics::ServerMetrics(std::size_t max_batch, bool gpu) {
  auto& r = registry;
  requests = &r.counter("kiln_requests_total", "HTTP requests answered, by route and status code.", {"route", "code"});
  errors = &r.counter("kiln_request_errors_total", "Requests refused or failed, by reason (the error code).", {"reason"});
  texts = &r.counter("kiln_texts_total", "Texts classified, by model.", {"model"});
  predictions = &r.counter("kiln_predictions_total", "Texts classified, by model and predicted label.", {"model", "label"});
  reloads = &r.counter("kiln_model_reloads_total", "Model loads and reloads by API or SIGHUP, by model and result.",
                       {"model", "result"});
  connections_accepted = &r.counter("kiln_connections_accepted_total", "TCP connections accepted.");
  connections_rejected = &r.counter("kiln_connections_rejected_total",
                                    "Connections refused at once (503, closed): over --max-connections or out of file descriptors.");
  connection_timeouts = &r.counter("kiln_connection_timeouts_total",
                                   "Connections closed for a timeout, by phase (header, body, idle keep-alive, write).",
                                   {"phase"});
  connections_open = &r.gauge("kiln_open_connections", "TCP connections open now.");
  duration = &r.histogram("kiln_request_duration_seconds", "Time from request start to response, by route.", {"route"},
                          latency_buckets());
  batch_size = &r.histogram("kiln_inference_batch_size", "Texts per forward pass (dynamic batching), by model.", {"model"},
                            power_of_two_buckets(static_cast<double>(std::max<std::size_t>(1024, max_batch))));
  confidence = &r.histogram("kiln_prediction_confidence", "Top-1 probability of each prediction, by model.", {"model"},
                            probability_buckets());
  queue_depth = &r.gauge("kiln_queue_depth", "Texts waiting for an inference thread, by model.", {"model"});
  model_info = &r.gauge("kiln_model_info", "Each model's loaded artifact (1) and artifacts loaded before it or unloaded (0).",
                        {"model", "version", "family", "artifact"});
  drift_psi = &r.gauge("kiln_drift_psi",
                       "Population stability index of live inputs vs the training profile, by model and signal.",
                       {"model", "signal"});
  drift_oov = &r.gauge("kiln_drift_oov_rate",
                       "Mean share of terms outside the training vocabulary, over the drift window, by model.", {"model"});
  drift_shift = &r.gauge("kiln_drift_top_feature_shift",
                         "Mean absolute change of the training set's top features' document shares, over the drift window, by model.",
                         {"model"});
  drift_window = &r.gauge("kiln_drift_window_texts", "Texts in the drift window, by model.", {"model"});
  importance_shift = &r.gauge("kiln_feature_importance_shift",
                              "Total variation distance between the training and live shares of mean |SHAP| over the "
                              "artifact's top-20 features (linear-family models with importance.json), by model.",
                              {"model"});
  drift_intensity = &r.gauge("kiln_drift_image_mean_intensity",
                             "Mean gray intensity (0-255) of the images in the drift window, by model (models that read images).",
                             {"model"});
  ready = &r.gauge("kiln_ready", "1 when a model is loaded and the server is not draining.");
  register_process_metrics(r);
  if (gpu) {
    gpu_util = &r.gauge("kiln_gpu_utilization_ratio", "GPU busy share over the last NVML sample period.", {"gpu"});
    gpu_mem_used = &r.gauge("kiln_gpu_memory_used_bytes", "GPU memory in use.", {"gpu"});
    gpu_mem_total = &r.gauge("kiln_gpu_memory_total_bytes", "GPU memory in total.", {"gpu"});
    gpu_temp = &r.gauge("kiln_gpu_temperature_celsius", "GPU core temperature.", {"gpu"});
  }
}

}  // namespace kiln::serve
