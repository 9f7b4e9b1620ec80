// Test helpers: load the TF-IDF goldens written by tests/golden/make_tfidf_golden.py.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::text::testing {

inline nlohmann::json load_golden(const std::string& name) {
  const std::string path = std::string(KILN_GOLDEN_DIR) + "/tfidf/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + "; run tests/golden/make_tfidf_golden.py");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

}  // namespace kiln::text::testing
