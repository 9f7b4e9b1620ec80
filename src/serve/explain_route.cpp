#include "explain_route.h"

#include <chrono>

#include "kiln/explain/explainer.h"

namespace kiln::serve {

ExplainAnswer explain_route(const artifact::Predictor& predictor, const std::string& version, const std::string& body,
                            const RequestLimits& limits, double budget_seconds) {
  ExplainAnswer out;
  PredictRequest pr;
  RequestError err;
  if (!parse_predict_request(body, limits, pr, err)) {
    out.status = err.status;
    out.code = err.code;
    out.message = err.message;
    return out;
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const explain::Explainer explainer(predictor, {});
    nlohmann::json list = nlohmann::json::array();
    for (std::size_t i = 0; i < pr.texts.size(); ++i) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (elapsed > budget_seconds) {
        out.status = 503;
        out.code = "explain_timeout";
        out.message = "explaining took longer than the budget of " + std::to_string(static_cast<int>(budget_seconds)) +
                      " s after " + std::to_string(i) + " of " + std::to_string(pr.texts.size()) +
                      " texts; send fewer or shorter texts per request";
        return out;
      }
      data::Examples one;
      one.texts = {pr.texts[i]};
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
