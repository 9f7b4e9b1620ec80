// POST /v1/explain: the body of /v1/predict ({"texts": [...]} or {"inputs": [{"text"/"image": ...}]},
// same limits and errors, images included)
// plus an optional "method" ("auto" by default; "ig" for integrated gradients on BERT models),
// answered with {"model_version": v, "explanations": [<kiln explain --json line>, ...]} (logit
// space; docs/explain.md), within a time budget per request.
#pragma once

#include <functional>
#include <string>

#include "kiln/artifact/predictor.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

/// Seconds one explain request may take; past it the answer is 503 explain_timeout.
inline constexpr double kExplainBudgetSeconds = 10.0;

struct ExplainAnswer {
  int status = 200;
  std::string body;        ///< 200: the JSON answer
  std::string code;        ///< errors: the stable error code ("invalid_json", "explain_timeout", ...)
  std::string message;     ///< 4xx/503: what was wrong and the fix; 500: what to log (never sent)
};

/// Checks a parsed request's inputs against the model as /v1/predict does (the modalities it reads,
/// decodable images within the limits): false with the error to answer.
using InputCheck = std::function<bool(const PredictRequest&, RequestError&)>;

/// Never throws: a bad body gives the 4xx parse_predict_request gives /v1/predict, and inputs the
/// model cannot read the 4xx `check_inputs` gives; an unknown method, or one that does not apply to
/// the model, 400 bad_method; a model failure, 500 explain_failed (details in `message`).
[[nodiscard]] ExplainAnswer explain_route(const artifact::Predictor& predictor, const std::string& version,
                                          const std::string& body, const RequestLimits& limits,
                                          const InputCheck& check_inputs,
                                          double budget_seconds = kExplainBudgetSeconds);

}  // namespace kiln::serve
