#include "kiln/report/page.h"

#include <gtest/gtest.h>

#include <string>

#include "kiln/core/error.h"

namespace kiln::report {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(EscapeHtml, EveryMarkupCharacter) {
  EXPECT_EQ(escape_html("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(escape_html("plain ünïcode"), "plain ünïcode");
}

TEST(JsonForScript, CannotCloseTheScriptElement) {
  const nlohmann::json j = {{"label", "</script><!-- & >"}};
  const std::string s = json_for_script(j);
  EXPECT_FALSE(contains(s, "</")) << s;
  EXPECT_FALSE(contains(s, "<!--")) << s;
  EXPECT_EQ(nlohmann::json::parse(s), j) << "the text must still be the same JSON";
}

TEST(Page, RendersOneSelfContainedDocument) {
  Page page("Run <x>", "sub & title");
  page.section("Data");
  page.paragraph("a <b> paragraph");
  page.key_values({{"rows", "10"}});
  Figure f;
  f.id = "fig-1";
  f.title = "A figure";
  f.kind = "line";
  f.body = "<svg><title>t</title></svg>";
  f.data = {{"y", {1, 2}}};
  f.note = "note <n>";
  page.add(f);
  page.details("config", "{\"a\": \"<b>\"}");
  page.data("config", {{"epochs", 3}});
  const std::string h = page.render("kiln 9.9");
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(contains(h, "<title>Run &lt;x&gt;</title>"));
  EXPECT_TRUE(contains(h, "<p>a &lt;b&gt; paragraph</p>"));
  EXPECT_TRUE(contains(h, "default-src 'none'")) << "the page must forbid every request";
  EXPECT_TRUE(contains(h, "prefers-color-scheme:dark"));
  EXPECT_TRUE(contains(h, "@media print"));
  EXPECT_TRUE(contains(h, "<figure class=\"fig\" id=\"fig-1\" data-kind=\"line\"><figcaption>A figure</figcaption>"));
  EXPECT_TRUE(contains(h, "<a href=\"#s0-data\">Data</a>"));
  EXPECT_FALSE(contains(h, "<script>")) << "no executable script";
  const std::string open = "<script type=\"application/json\" id=\"kiln-report-data\">";
  const auto a = h.find(open);
  ASSERT_NE(a, std::string::npos);
  const auto b = h.find("</script>", a);
  const auto data = nlohmann::json::parse(h.substr(a + open.size(), b - a - open.size()));
  EXPECT_EQ(data["fig-1"]["data"]["y"], (nlohmann::json{1, 2}));
  EXPECT_EQ(data["figures"], (nlohmann::json{"fig-1"}));
  EXPECT_EQ(data["config"]["epochs"], 3);
  EXPECT_EQ(data["generator"], "kiln 9.9");
}

TEST(Page, RejectsDuplicateAndMalformedIds) {
  Page page("t");
  Figure f;
  f.id = "same";
  page.add(f);
  try {
    page.add(f);
    FAIL() << "a second figure with the same id must be rejected";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "report figure id 'same' is used twice on the page; give each figure its own id");
  }
  f.id = "Bad Id\"";
  try {
    page.add(f);
    FAIL() << "an id with markup characters must be rejected";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "report figure id 'Bad Id\"' must be lowercase letters, digits and '-'");
  }
}

}  // namespace
}  // namespace kiln::report
