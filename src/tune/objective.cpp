#include "kiln/tune/objective.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace kiln::tune {

std::string param_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
      // 64.0 -> "64": a float parameter on an integer grid reads as the integer programs expect.
      return std::to_string(static_cast<long long>(v));
    }
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }
  return value.dump();
}

std::string param_env_name(const std::string& name) {
  std::string out = "KILN_PARAM_";
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    out += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  }
  return out;
}

}  // namespace kiln::tune
