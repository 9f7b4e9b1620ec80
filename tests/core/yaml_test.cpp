#include "kiln/core/yaml.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"

TEST(Yaml, ScalarsBecomeTypedJson) {
  auto j = kiln::core::parse_yaml("a: 1\nb: 1.5e-3\nc: true\nd: ~\ne: text\nf: '7'\ng: [1, 2]\nh: {x: no}\n", "t.yaml");
  EXPECT_TRUE(j["a"].is_number_integer());
  EXPECT_EQ(j["a"].get<int>(), 1);
  EXPECT_DOUBLE_EQ(j["b"].get<double>(), 1.5e-3);
  EXPECT_EQ(j["c"], true);
  EXPECT_TRUE(j["d"].is_null());
  EXPECT_EQ(j["e"], "text");
  EXPECT_EQ(j["f"], "7");
  EXPECT_EQ(j["g"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(j["h"]["x"], false);
}

TEST(Yaml, SyntaxErrorNamesFileLineAndColumn) {
  try {
    (void)kiln::core::parse_yaml("a: 1\nb: [1, 2\n", "run.yaml");
    FAIL() << "expected ConfigError";
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run.yaml:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("invalid YAML"), std::string::npos) << e.what();
  }
}
