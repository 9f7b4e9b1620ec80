#include "explain_route.h"

#include <chrono>
#include <optional>

#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"

namespace kiln::serve {

ExplainAnswer explain_route(const artifact::Predictor& predictor, const std::string& version, const std::string& body,
                            const RequestLimits& limits, const InputCheck& check_inputs, double budget_seconds) {
  ExplainAnswer out;
  // An optional "method" (auto, partition, kernel, ig, linear) is taken out before the body is
  // read as a predict request; the size and nesting limits are checked first, as predict does.
  explain::ExplainOptions options;
  std::string predict_body = body;
  if (body.size() <= limits.max_body_bytes && json_nesting_depth(body, limits.max_nesting) <= limits.max_nesting) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("method")) {
      const auto& m = j.at("method");
      try {
        if (!m.is_string()) throw ConfigError("field 'method' must be a string, got " + std::string(m.type_name()));
        options.method = explain::parse_method(m.get<std::string>(), "field 'method'");
      } catch (const ConfigError& e) {
        out.status = 400;
        out.code = "bad_method";
        out.message = e.what();
        return out;
      }
      j.erase("method");
      predict_body = j.dump();
    }
  }
  PredictRequest pr;
  RequestError err;
  if (!parse_predict_request(predict_body, limits, pr, err) || (check_inputs && !check_inputs(pr, err))) {
    out.status = err.status;
    out.code = err.code;
    out.message = err.message;
    return out;
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    std::optional<explain::Explainer> made;
    try {
      made.emplace(predictor, options);
    } catch (const ConfigError& e) {  // the method does not apply to this model
      out.status = 400;
      out.code = "bad_method";
      out.message = e.what();
      return out;
    }
    const explain::Explainer& explainer = *made;
    nlohmann::json list = nlohmann::json::array();
    const std::size_t n = pr.size();
    for (std::size_t i = 0; i < n; ++i) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed > budget_seconds) {
        out.status = 503;
        out.code = "explain_timeout";
        out.message = "explaining took longer than the budget of " + std::to_string(static_cast<int>(budget_seconds)) +
                      " s after " + std::to_string(i) + " of " + std::to_string(n) +
                      " inputs; send fewer or shorter inputs per request";
        return out;
      }
      data::Examples one;
      if (!pr.texts.empty()) one.texts = {pr.texts[i]};
      if (!pr.images.empty()) one.images = {data::ImageRef{{}, pr.images[i]}};
      list.push_back(explain::to_json(explainer.explain(one).front()));
    }
    out.body = nlohmann::json{{"model_version", version}, {"explanations", list}}.dump();
  } catch (const std::exception& e) {
    out.status = 500;
    out.code = "explain_failed";
    out.message = std::string("POST /v1/explain: ") + e.what();
  }
  return out;
}

}  // namespace kiln::serve
