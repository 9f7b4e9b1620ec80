// Helpers shared by the kiln::tune tests (tests/tune/*_test.cpp): distributions in one line and
// the golden values written by tests/golden/make_*_golden.py.
#pragma once

#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/tune/study.h"

namespace kiln::tune {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// A distribution of `kind` on [low, high]; an int one without `step` gets step 1.
inline Distribution make_distribution(Distribution::Kind kind, double low, double high, bool log = false,
                                      std::optional<double> step = {}) {
  Distribution d;
  d.kind = kind;
  d.low = low;
  d.high = high;
  d.log = log;
  d.step = step;
  if (kind == Distribution::Kind::kInt && !step) d.step = 1.0;
  return d;
}

/// Parses KILN_GOLDEN_DIR/tune/<name>.json; throws, naming the script that writes it
/// (tests/golden/make_<name>_golden.py), when it is missing.
inline nlohmann::json load_golden(const std::string& name) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/tune/" + name + ".json");
  if (!in) throw std::runtime_error("missing golden; run /usr/bin/python3 tests/golden/make_" + name + "_golden.py");
  return nlohmann::json::parse(in);
}

}  // namespace kiln::tune
