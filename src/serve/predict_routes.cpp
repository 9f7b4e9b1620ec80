// The model routes of both APIs (/v1/predict, /v1/model(s), /v2/models/...) and the prediction
// path they share: parse, check, encode on the worker, offer to drift, batch, answer.
#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "json_body.h"
#include "kiln/serve/metrics.h"
#include "predict_response.h"
#include "route_paths.h"
#include "served_model.h"
#include "server_impl.h"

namespace kiln::serve {

namespace {

std::string what_of(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}

}  // namespace

bool Server::Impl::handle_model_route(http::Request& req, http::Responder& res) {
  const std::string& path = req.path;
  const std::string& method = req.method;
  const auto unknown = [&](const std::string& name) {
    std::string names;
    for (const auto& s : models->loaded()) names += (names.empty() ? "'" : ", '") + s->name() + "'";
    return "unknown model '" + name + "'; this server serves " + names;
  };
  if (path == "/v1/predict" || path == "/v1/model") {
    if (method != (path == "/v1/model" ? "GET" : "POST")) {
      method_not_allowed(req, res, path == "/v1/model" ? "GET" : "POST");
      return true;
    }
    ModelLease lease = models->acquire_default();
    if (!lease) {
      send(res, error(503, "not_ready", "the default model is not loaded"));
    } else if (path == "/v1/model") {
      send(res, json(lease->model()->info_json()));
    } else {
      route_inference(std::move(req), std::move(res), lease, false);
    }
    return true;
  }
  if (path == "/v1/models") {
    if (method != "GET") {
      method_not_allowed(req, res, "GET");
      return true;
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : models->loaded()) {
      const auto m = s->model();
      list.push_back({{"name", s->name()}, {"version", m->version()}, {"artifact", m->dir()},
                      {"default", s->name() == models->default_name()}});
    }
    send(res, json(nlohmann::json{{"models", list}, {"default_model", models->default_name()}}.dump()));
    return true;
  }
  ModelPath p;
  if (parse_v1_model_path(path, p)) {
    const char* allow = p.action.empty() ? "GET" : "POST";
    if (method != allow) {
      method_not_allowed(req, res, allow);
      return true;
    }
    ModelLease lease = models->acquire(p.name);
    if (!lease) {
      send(res, error(404, "model_not_found", unknown(p.name)));
    } else if (p.action.empty()) {
      send(res, json(lease->model()->info_json()));
    } else {
      route_inference(std::move(req), std::move(res), lease, false);
    }
    return true;
  }
  if (!parse_v2_model_path(path, p)) return false;
  ModelLease lease = models->acquire(p.name);
  if (!lease) {
    send(res, v2_error(404, "model_not_found", unknown(p.name)));
    return true;
  }
  const auto m = lease->model();
  if (!p.version.empty() && p.version != m->version()) {
    send(res, v2_error(404, "model_not_found",
                       "unknown version '" + p.version + "' of model '" + p.name + "'; the served version is '" +
                           m->version() + "'"));
    return true;
  }
  if (p.action == "infer") {
    if (method != "POST") {
      method_not_allowed(req, res, "POST");
      return true;
    }
    route_inference(std::move(req), std::move(res), lease, true);
    return true;
  }
  if (method != "GET") {
    method_not_allowed(req, res, "GET");
  } else if (p.action == "ready") {
    if (draining) {
      send(res, v2_error(400, "not_ready", "model '" + p.name + "' is not ready: the server is draining"));
    } else {
      send(res, json(""));
    }
  } else {
    send(res, json(v2::model_metadata(p.name, m->version(), m->labels().size(), m->reads_text(), m->reads_images())));
  }
  return true;
}

namespace {

/// Bodies up to this size may be parsed on the event loop (runs_here()): a few microseconds of
/// work. Larger ones (many texts) are parsed on a worker.
constexpr std::size_t kInlineBodyBytes = 8192;

}  // namespace

bool Server::Impl::runs_here(const http::Request& req, const ModelSlot& slot) const {
  if (req.body.size() > kInlineBodyBytes || !slot.batcher().runs_inline()) return false;
  const auto m = slot.model();
  return m && !m->reads_images();
}

void Server::Impl::route_inference(http::Request&& req, http::Responder res, const ModelLease& lease, bool v2) {
  if (runs_here(req, *lease)) {
    return guarded(
        req, res,
        [lease, v2](Impl& s, http::Request& q, http::Responder& r) {
          v2 ? s.v2_infer(q, r, lease, true) : s.predict(q, r, lease, true);
        },
        v2);
  }
  announce_arrival(req, *lease);
  offload(
      std::move(req), std::move(res),
      [lease, v2](Impl& s, http::Request& q, http::Responder& r) { v2 ? s.v2_infer(q, r, lease) : s.predict(q, r, lease); },
      v2);
}

void Server::Impl::defer(const ModelLease& lease, std::shared_ptr<const ServedModel> model, Deferred request) {
  for (auto& r : round) {
    if (&*r.lease == &*lease && r.model == model) {
      r.requests.push_back(std::move(request));
      return;
    }
  }
  round.push_back(RoundModel{lease, std::move(model), {}});
  round.back().requests.push_back(std::move(request));
}

void Server::Impl::end_round() {
  // One task for the whole round: the loop stays free for I/O (running the batch here measured a
  // worse P99 under load: a busy loop thread loses its turn to other processes), and the round
  // pays one hand-off instead of three per request.
  if (round.empty()) return;
  auto models = std::make_shared<std::vector<RoundModel>>(std::move(round));
  round.clear();
  http->offload([this, models] {
    for (auto& r : *models) run_round(r);
  });
}

void Server::Impl::run_round(RoundModel& round_model) {
  const auto& m = round_model.model;
  auto& requests = round_model.requests;
  Batcher& batcher = round_model.lease->batcher();
  const std::size_t classes = m->num_classes();
  for (std::size_t i = 0; i < requests.size();) {
    // Up to max_batch texts (one request at least), encoded together: one encoding, one drift
    // offer and one forward pass for the round's requests, answered each with its own rows.
    std::size_t end = i, texts = 0;
    while (end < requests.size() && (end == i || texts + requests[end].texts.size() <= options.batching.max_batch)) {
      texts += requests[end++].texts.size();
    }
    auto chunk = std::make_shared<std::vector<Deferred>>(std::make_move_iterator(requests.begin() + static_cast<std::ptrdiff_t>(i)),
                                                         std::make_move_iterator(requests.begin() + static_cast<std::ptrdiff_t>(end)));
    i = end;
    std::vector<std::string> joined;
    joined.reserve(texts);
    for (auto& d : *chunk) {
      for (auto& s : d.texts) joined.push_back(std::move(s));  // d.texts keeps its size (rows)
    }
    auto answer = [chunk, classes](BatchResult r) {
      std::size_t row = 0;
      for (auto& d : *chunk) {
        const std::size_t n = d.texts.size();
        BatchResult part;
        part.classes = r.classes;
        part.batch_texts = r.batch_texts;
        part.error = r.error;
        if (!r.error) {
          part.probabilities.assign(r.probabilities.begin() + static_cast<std::ptrdiff_t>(row * classes),
                                    r.probabilities.begin() + static_cast<std::ptrdiff_t>((row + n) * classes));
        }
        row += n;
        try {
          d.done(std::move(part));
        } catch (...) {
          // Its own failure; the chunk's other requests still get answers.
        }
      }
    };
    std::shared_ptr<const BatchModel::Input> encoded;
    try {
      encoded = m->encode(joined);
    } catch (...) {
      BatchResult r;
      r.classes = classes;
      r.batch_texts = texts;
      r.error = std::current_exception();
      answer(std::move(r));
      continue;
    }
    drift->offer(m, std::move(joined), encoded);  // the texts are not read again
    if (!batcher.defer_here(m, std::move(encoded), texts, answer)) {
      for (auto& d : *chunk) d.overloaded();
    }
  }
  batcher.run_here();
}

void Server::Impl::count_predictions(const ModelSlot& slot, const ServedModel& m, const BatchResult& r,
                                     std::size_t n) {
  const auto& labels = m.labels();
  const std::size_t classes = r.classes;
  const std::string& model = slot.name();
  HistogramChild& confidence = *slot.metrics().confidence;
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = r.probabilities.data() + i * classes;
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c) {
      if (p[c] > p[best]) best = c;
    }
    confidence.observe(p[best]);
    metrics.predictions->labels({model, labels[best]}).inc();
  }
  slot.metrics().texts->inc(static_cast<double>(n));
}

namespace {

/// The inputs (texts and images) encoded by `m` on this thread (the prediction and drift share
/// it); null on failure, with the exception's first line in `failure`.
std::shared_ptr<const BatchModel::Input> try_encode(const ServedModel& m, const PredictRequest& request,
                                                    std::string& failure) {
  try {
    return m.encode(request);
  } catch (const std::exception& e) {
    failure = first_line(e.what());
  } catch (...) {
    failure = "unknown exception";
  }
  return nullptr;
}

}  // namespace

void Server::Impl::predict(http::Request& req, http::Responder& res, const ModelLease& lease, bool here) {
  PredictRequest pr;
  RequestError err;
  if (!parse_predict_request(req.body, options.limits, pr, err)) {
    req.guard = {};  // no longer arriving
    return send(res, error(err.status, err.code, err.message));
  }
  const auto m = lease->model();
  if (!m->check_inputs(pr, options.limits, err)) {
    req.guard = {};  // no longer arriving
    return send(res, error(err.status, err.code, err.message));
  }
  const std::size_t n = pr.size();
  const std::size_t k = std::min(pr.top_k, m->labels().size());
  auto shared = std::make_shared<http::Responder>(std::move(res));
  // A copy of the texts for the extensions that watch predictions (e.g. a shadow candidate).
  std::shared_ptr<const std::vector<std::string>> watched;
  if (pr.images.empty() && std::any_of(options.extensions.begin(), options.extensions.end(),
                                       [](const auto& e) { return e->wants_predictions(); })) {
    watched = std::make_shared<const std::vector<std::string>>(pr.texts);
  }
  auto done = [this, lease, m, n, k, shared, watched](BatchResult r) {
    if (r.error) {
      return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                          "POST /v1/predict (model " + lease->name() + "): the model failed on a batch of " +
                                              std::to_string(r.batch_texts) + " texts: " + first_line(what_of(r.error))));
    }
    count_predictions(*lease, *m, r, n);
    send(*shared, json(predict_response_json(m->labels_json(), m->version_json(), r.probabilities, n, k)));
    if (watched) show_predictions(lease->name(), *m, r, *watched);
  };
  auto overloaded = [this, shared] {
    auto resp = error(503, "overloaded",
                      "the inference queue is full (" + std::to_string(options.batching.max_queue) +
                          " texts); retry after 1 s, or raise --max-queue / add replicas");
    resp.headers.emplace_back("Retry-After", "1");
    send(*shared, std::move(resp));
  };
  if (here && pr.images.empty()) return defer(lease, m, Deferred{std::move(pr.texts), std::move(done), std::move(overloaded)});
  std::string failure;
  auto encoded = try_encode(*m, pr, failure);
  if (!encoded) {
    req.guard = {};  // no longer arriving
    return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                        "POST /v1/predict (model " + lease->name() + "): encoding the inputs failed: " + failure));
  }
  drift->offer(m, std::move(pr.texts), encoded, std::move(pr.images));  // the inputs are not read again
  const bool was_arriving = req.guard.release();
  if (!lease->batcher().submit_encoded(m, std::move(encoded), n, was_arriving, std::move(done))) overloaded();
}

void Server::Impl::v2_infer(http::Request& req, http::Responder& res, const ModelLease& lease, bool here) {
  v2::InferRequest ir;
  RequestError err;
  std::optional<std::size_t> json_bytes;
  if (const std::string* h = req.header("inference-header-content-length")) {
    if (h->empty() || h->size() > 18 || !std::all_of(h->begin(), h->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      req.guard = {};
      return send(res, v2_error(400, "invalid_request", "Inference-Header-Content-Length must be a byte count"));
    }
    json_bytes = std::stoull(*h);
  }
  if (!v2::parse_infer_request(req.body, options.limits, ir, err, json_bytes)) {
    req.guard = {};
    return send(res, v2_error(err.status, err.code, err.message));
  }
  const auto m = lease->model();
  PredictRequest inputs;
  inputs.texts = std::move(ir.texts);
  inputs.images = std::move(ir.images);
  ir.texts.clear();
  ir.images.clear();
  if (!m->check_inputs(inputs, options.limits, err, true)) {
    req.guard = {};
    return send(res, v2_error(err.status, err.code, err.message));
  }
  const std::size_t n = inputs.size();
  auto shared = std::make_shared<http::Responder>(std::move(res));
  const std::string where = "POST /v2/models/" + lease->name() + "/infer";
  auto request = std::make_shared<v2::InferRequest>(std::move(ir));
  auto done = [this, lease, m, n, shared, request, where](BatchResult r) {
    if (r.error) {
      return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                          where + ": the model failed on a batch of " + std::to_string(r.batch_texts) +
                                              " texts: " + first_line(what_of(r.error)),
                                          true));
    }
    count_predictions(*lease, *m, r, n);
    send(*shared, json(v2::infer_response(lease->name(), m->version(), *request, r.probabilities, m->labels())));
  };
  auto overloaded = [this, shared] {
    auto resp = v2_error(503, "overloaded",
                         "the inference queue is full (" + std::to_string(options.batching.max_queue) +
                             " texts); retry after 1 s");
    resp.headers.emplace_back("Retry-After", "1");
    send(*shared, std::move(resp));
  };
  if (here && inputs.images.empty()) return defer(lease, m, Deferred{std::move(inputs.texts), std::move(done), std::move(overloaded)});
  std::string failure;
  auto encoded = try_encode(*m, inputs, failure);
  if (!encoded) {
    req.guard = {};  // no longer arriving
    return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                        where + ": encoding the texts failed: " + failure, true));
  }
  drift->offer(m, std::move(inputs.texts), encoded, std::move(inputs.images));  // the response needs only the outputs asked for
  const bool was_arriving = req.guard.release();
  if (!lease->batcher().submit_encoded(m, std::move(encoded), n, was_arriving, std::move(done))) overloaded();
}

void Server::Impl::show_predictions(const std::string& model, const ServedModel& m, const BatchResult& r,
                                    const std::vector<std::string>& texts) {
  std::vector<std::string> labels;
  labels.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const float* p = r.probabilities.data() + i * r.classes;
    labels.push_back(m.labels()[static_cast<std::size_t>(std::max_element(p, p + r.classes) - p)]);
  }
  for (const auto& e : options.extensions) {
    if (!e->wants_predictions()) continue;
    try {
      e->on_predicted(model, texts, labels);
    } catch (const std::exception& ex) {
      core::warn(std::string("serve: an extension failed on the predictions it watches: ") + first_line(ex.what()));
    }
  }
}

}  // namespace kiln::serve
