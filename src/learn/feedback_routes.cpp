// The feedback service's routes: POST /v1/feedback (token, limits, labels, the durable append),
// GET /v1/feedback (the loop's state) and POST /v1/admin/rollback.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "../serve/base64.h"
#include "feedback_service_impl.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/server.h"

namespace kiln::learn {
using serve::ExtensionRequest;
using serve::ExtensionResponse;

namespace {

using Clock = std::chrono::steady_clock;
/// Items checked between two yields of the CPU: a request's checks (and its images' decoding) come in
/// pieces a waiting prediction can run between. On a 2-core machine under Linux 6.18 (EEVDF) the
/// intake thread's nice value alone did not let predictions preempt it; yielding roughly halved the
/// extra latency of predictions due while a 100-item feedback request ran (bench/serve_feedback_load.sh).
constexpr std::size_t kYieldEvery = 16;
constexpr const char* kShape =
    R"(send {"items": [{"text": "...", "label": "...", "id": "..."}]} ("id" optional; an image model's items carry "image": base64 PNG/JPEG bytes))";

}  // namespace

std::string FeedbackService::Impl::unknown_label(const std::string& where, const std::string& label) const {
  std::string list;
  for (const auto& l : label_list) list += (list.empty() ? "" : ", ") + l;
  return where + " '" + label + "' is not one of the model's " + std::to_string(label_list.size()) + " labels (" + list +
         "); fix the label, or restart the server with --allow-new-labels to learn it as a new class";
}

serve::ExtensionResponse FeedbackService::handle(const ExtensionRequest& r) {
  auto& m = *impl_;
  if (r.path == "/v1/admin/rollback") {
    if (r.method != "POST") {
      auto a = ExtensionResponse::error(405, "method_not_allowed", r.method + " " + r.path + " is not supported; use POST");
      a.headers.emplace_back("Allow", "POST");
      return a;
    }
    return m.rollback();
  }
  if (r.method != "POST" && r.method != "GET") {
    auto a = ExtensionResponse::error(405, "method_not_allowed",
                                      r.method + " " + r.path + " is not supported; use POST (send feedback) or GET (its state)");
    a.headers.emplace_back("Allow", "GET, POST");
    return a;
  }
  const std::string prefix = "Bearer ";
  if (r.authorization.empty() || r.authorization.rfind(prefix, 0) != 0 ||
      !serve::constant_time_equal(r.authorization.substr(prefix.size()), m.options.token)) {
    auto a = ExtensionResponse::error(
        401, "unauthorized",
        r.authorization.empty() ? "/v1/feedback needs the header `Authorization: Bearer <token>` (the server's --feedback-token-file)"
                                : "the bearer token does not match the server's --feedback-token-file");
    a.headers.emplace_back("WWW-Authenticate", "Bearer");
    return a;
  }
  if (r.method == "GET") return m.status();
  return m.on_intake([&m, &r] { return m.post_feedback(r); });
}

serve::ExtensionResponse FeedbackService::Impl::post_feedback(const ExtensionRequest& r) {
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::parse_error& e) {
    return ExtensionResponse::error(400, "invalid_json",
                                    "the request body is not valid JSON (at byte " + std::to_string(e.byte) + "); " + kShape);
  }
  if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
    return ExtensionResponse::error(400, "invalid_request", std::string("the body needs an \"items\" array; ") + kShape);
  }
  const auto& arr = body["items"];
  const auto n = static_cast<int64_t>(arr.size());
  const auto refuse = [&](int status, const std::string& code, const std::string& message) {
    items_total->labels({model, "rejected"}).inc(static_cast<double>(n));
    return ExtensionResponse::error(status, code, message);
  };
  if (n == 0) return refuse(400, "invalid_request", std::string("\"items\" is empty; ") + kShape);
  if (n > options.max_items_per_request) {
    return refuse(429, "too_many_items",
                  "\"items\" holds " + std::to_string(n) + " items, more than the " +
                      std::to_string(options.max_items_per_request) +
                      " one request may carry (--feedback-max-items); split it into smaller requests");
  }
  std::vector<FeedbackItem> items;
  items.reserve(arr.size());
  {
    std::lock_guard<std::mutex> lock(req_mu);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      if (i % kYieldEvery == kYieldEvery - 1) std::this_thread::yield();  // serving threads waiting run first
      const auto& it = arr[i];
      const std::string where = "items[" + std::to_string(i) + "]";
      if (!it.is_object()) return refuse(400, "invalid_request", where + " is not an object; " + kShape);
      for (const auto& [key, value] : it.items()) {
        if (key != "text" && key != "image" && key != "label" && key != "id") {
          return refuse(400, "unknown_field", where + " has an unknown field \"" + key + "\"; " + kShape);
        }
      }
      FeedbackItem item;
      // The modalities the model reads, as /v1/predict checks them.
      if (reads_text) {
        if (!it.contains("text")) {
          return refuse(400, "missing_modality", where + " has no \"text\"; this model reads " +
                                                     std::string(reads_images ? "a text and an image" : "a text") + " per item");
        }
        if (!it["text"].is_string()) return refuse(400, "invalid_request", where + ".text is not a string; " + kShape);
        item.example.text = it["text"].get<std::string>();
      } else if (it.contains("text")) {
        return refuse(400, "unexpected_modality", where + " has a \"text\"; this model reads an image only; send \"image\"");
      }
      if (reads_images) {
        if (!it.contains("image")) {
          return refuse(400, "missing_modality", where + " has no \"image\"; this model reads " +
                                                     std::string(reads_text ? "a text and an image" : "an image") +
                                                     " per item (base64 PNG/JPEG bytes)");
        }
        if (!it["image"].is_string()) {
          return refuse(400, "invalid_request", where + ".image must be a string of base64 PNG/JPEG bytes");
        }
        const auto& limits = server->limits();
        std::string bytes;
        std::size_t bad_at = 0;
        bool too_large = false;
        if (!serve::decode_base64(it["image"].get_ref<const std::string&>(), limits.max_image_bytes, bytes, bad_at, too_large)) {
          if (too_large) {
            return refuse(413, "image_too_large", where + ".image holds more than " + std::to_string(limits.max_image_bytes) +
                                                      " bytes, the limit per image (resize it, or raise --max-image-bytes)");
          }
          return refuse(400, "invalid_base64", where + ".image is not base64 at character " + std::to_string(bad_at) +
                                                   "; send the PNG/JPEG file's bytes in standard base64");
        }
        data::ImageLimits image_limits;
        image_limits.max_bytes = static_cast<std::int64_t>(limits.max_image_bytes);
        image_limits.max_pixels = limits.max_image_pixels;
        try {
          if (bytes.empty()) throw DataError("empty; send a PNG or JPEG file");
          (void)data::decode_image(bytes, image_limits);
        } catch (const DataError& e) {
          const std::string what = e.what();
          const bool large = what.find("more than the limit") != std::string::npos;
          return refuse(large ? 413 : 400, large ? "image_too_large" : "invalid_image",
                        where + ".image: " + what + (large ? " (kiln serve --max-image-pixels / --max-image-bytes)" : ""));
        }
        item.example.image = data::ImageRef{{}, std::move(bytes)};
      } else if (it.contains("image")) {
        return refuse(400, "unexpected_modality", where + " has an \"image\"; this model reads text only; send \"text\"");
      }
      if (!it.contains("label") || !it["label"].is_string() || it["label"].get<std::string>().empty()) {
        return refuse(400, "invalid_request", where + ".label is missing, empty or not a string; " + kShape);
      }
      if (it.contains("id")) {
        if (it["id"].is_string()) {
          item.id = it["id"].get<std::string>();
        } else if (it["id"].is_number_integer()) {
          item.id = std::to_string(it["id"].get<int64_t>());
        } else {
          return refuse(400, "invalid_request", where + ".id must be a string or an integer");
        }
      }
      item.example.label = it["label"].get<std::string>();
      if (!options.learn.update.allow_new_labels && !labels.count(item.example.label)) {
        return refuse(400, "unknown_label", unknown_label(where + ".label", item.example.label));
      }
      items.push_back(std::move(item));
    }
    // The token's last 60 seconds.
    auto& window = windows[options.token];
    const auto now = Clock::now();
    while (!window.empty() && now - window.front().first >= std::chrono::seconds(60)) window.pop_front();
    int64_t used = 0;
    for (const auto& [t, k] : window) used += k;
    if (used + n > options.max_items_per_minute) {
      // Retry when enough of the window has expired for this request to fit.
      int64_t freed = 0;
      double wait_s = 60;
      for (const auto& [t, k] : window) {
        freed += k;
        if (used - freed + n <= options.max_items_per_minute) {
          wait_s = 60 - std::chrono::duration<double>(now - t).count();
          break;
        }
      }
      auto a = refuse(429, "rate_limited",
                      "this token sent " + std::to_string(used) + " items in the last minute; " + std::to_string(n) +
                          " more would pass the " + std::to_string(options.max_items_per_minute) +
                          " a minute allowed (--feedback-max-items-per-minute); retry after the Retry-After seconds");
      a.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)))));
      return a;
    }
    window.emplace_back(now, n);
  }
  const AppendResult a = log->append(items);  // durable when it returns
  items_total->labels({model, "accepted"}).inc(static_cast<double>(a.accepted));
  items_total->labels({model, "duplicate"}).inc(static_cast<double>(a.duplicates));
  if (a.accepted > 0) {
    {
      std::lock_guard<std::mutex> lock(wake_mu);
      logged_seq = std::max(logged_seq, log->last_seq());
    }
    wake.notify_all();
  }
  return ExtensionResponse::ok(nlohmann::json{{"accepted", a.accepted}, {"duplicates", a.duplicates}}.dump());
}

serve::ExtensionResponse FeedbackService::Impl::status() {
  Snapshot s;
  {
    std::lock_guard<std::mutex> lock(snap_mu);
    s = snap;
  }
  int64_t logged = 0;
  {
    std::lock_guard<std::mutex> lock(wake_mu);
    logged = logged_seq;
  }
  nlohmann::json j = s.summary.to_json();
  j["model"] = model;
  j["state_dir"] = state_dir;
  j["log_items"] = log->size();
  j["logged_seq"] = logged;
  j["saved_cursor"] = s.cursor;
  j["pending"] = s.pending;
  j["buffer_items"] = s.buffer;
  j["served_version"] = s.summary.version.empty() ? "original" : s.summary.version;
  if (options.shadow_requests > 0) {
    std::lock_guard<std::mutex> lock(wake_mu);
    j["shadow"] = {{"active", shadowing.load()}, {"requests", shadow_seen}, {"of", options.shadow_requests}};
  }
  return ExtensionResponse::ok(j.dump());
}

serve::ExtensionResponse FeedbackService::Impl::rollback() {
  std::lock_guard<std::mutex> lock(learner_mu);
  const std::string from = learner->summary().version;
  std::string dir;
  try {
    dir = learner->rollback();
  } catch (const ConfigError& e) {
    return ExtensionResponse::error(409, "nothing_to_roll_back", e.what());
  }
  const std::string model_version = server->load_model(model, dir);
  served_version = learner->summary().version;
  after_learning();
  const std::string to = served_version.empty() ? "original" : served_version;
  core::info("feedback (model " + model + "): rolled back from " + from + " to " + to + " (POST /v1/admin/rollback)");
  return ExtensionResponse::ok(
      nlohmann::json{{"model", model}, {"from", from}, {"to", to}, {"model_version", model_version}}.dump());
}

}  // namespace kiln::learn
