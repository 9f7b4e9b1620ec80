// JSON request bodies parsed with messages in the server's own words (private to serve).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kiln/serve/request.h"

namespace kiln::serve {

/// Parses `body`; on failure fills `error` (400 invalid_json: the byte offset and what was wrong,
/// never the library's text) ending with `hint`, and returns false. Never throws.
[[nodiscard]] bool parse_json_body(const std::string& body, nlohmann::json& out, RequestError& error,
                                   const std::string& hint);

}  // namespace kiln::serve
