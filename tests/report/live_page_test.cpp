// The served model's page (live_page.h), global importances (importance.json) in the run and
// served pages, the page kit's inline-script support and its CSP hash (SHA-256, base64).
#include "kiln/report/live_page.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "kiln/core/error.h"
#include "kiln/report/page.h"
#include "kiln/report/run_report.h"
#include "sha256.h"

namespace fs = std::filesystem;

namespace kiln::report {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

nlohmann::json data_block(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"kiln-report-data\">";
  const auto a = html.find(open);
  const auto b = html.find("</script>", a);
  return nlohmann::json::parse(html.substr(a + open.size(), b - a - open.size()));
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("kiln_live_page_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string hex(const std::array<uint8_t, 32>& d) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) s += std::string{k[b >> 4], k[b & 15]};
  return s;
}

TEST(Sha256, FipsExamples) {
  // FIPS 180-4 examples: one block, two blocks (the padding spills over), and the empty message.
  EXPECT_EQ(hex(detail::sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(detail::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(detail::sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(detail::sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Base64, Rfc4648Examples) {
  EXPECT_EQ(detail::base64(""), "");
  EXPECT_EQ(detail::base64("f"), "Zg==");
  EXPECT_EQ(detail::base64("fo"), "Zm8=");
  EXPECT_EQ(detail::base64("foo"), "Zm9v");
  EXPECT_EQ(detail::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(detail::base64(std::string("\xff\xfe", 2)), "//4=");
}

TEST(PageScript, TheCspAllowsExactlyTheScriptAndTheOwnOrigin) {
  Page page("t");
  page.section("s");
  page.script("console.log(1);");
  const std::string h = page.render("kiln");
  // The hash of "console.log(1);" as `printf 'console.log(1);' | sha256sum | xxd -r -p | base64` gives.
  EXPECT_TRUE(contains(h, "script-src 'sha256-" + detail::base64(std::string(reinterpret_cast<const char*>(
                                                       detail::sha256("console.log(1);").data()), 32)) + "'"));
  EXPECT_TRUE(contains(h, "default-src 'none'"));
  EXPECT_TRUE(contains(h, "connect-src 'self'"));
  EXPECT_TRUE(contains(h, "<script>console.log(1);</script>"));
  EXPECT_EQ(message_of([&] { page.script("x = '</SCRIPT>';"); }),
            "report page script contains \"</script\" or \"<!--\", which would end or hide it early; write "
            "\"<\\/script\" in the script instead");
  Page plain("t");
  EXPECT_FALSE(contains(plain.render("kiln"), "connect-src")) << "a page without scripts may fetch nothing";
}

const char* kImportance = R"({"method": "kernel", "space": "probability", "rows": 12,
  "classes": [{"label": "a", "features": [{"feature": "x", "mean_abs": 0.1}, {"feature": "y", "mean_abs": 0.3}]},
              {"label": "b<i>", "features": []}],
  "overall": [{"feature": "y", "mean_abs": 0.2}]})";

TEST(ImportanceFile, ParsesAndSortsTheExplainContract) {
  const auto g = parse_importance(kImportance, "m/importance.json");
  EXPECT_EQ(g.method, "kernel");
  EXPECT_EQ(g.space, "probability");
  EXPECT_EQ(g.rows, 12);
  ASSERT_EQ(g.classes.size(), 2u);
  ASSERT_EQ(g.classes[0].features.size(), 2u);
  EXPECT_EQ(g.classes[0].features[0].feature, "y") << "largest mean |attribution| first";
  EXPECT_EQ(g.classes[1].label, "b<i>");
  ASSERT_EQ(g.overall.size(), 1u);
}

TEST(ImportanceFile, EveryMalformedFieldNamesTheFileTheFieldAndTheFix) {
  const std::string p = "m/importance.json", fix = "; regenerate it with `kiln explain ARTIFACT --global`";
  auto msg = [&](const std::string& text) { return message_of([&] { (void)parse_importance(text, p); }); };
  EXPECT_TRUE(contains(msg("{\"method\": "), p + ": not valid JSON (")) << msg("{\"method\": ");
  EXPECT_EQ(msg("[]"), p + ": expected a JSON object with \"method\", \"space\", \"rows\" and \"classes\"" + fix);
  EXPECT_EQ(msg("{\"space\": \"logit\"}"), p + ": \"method\" must be a string, got nothing" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"odds\"}"), p + ": \"space\" must be \"logit\" or \"probability\", got \"odds\"" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"logit\", \"rows\": -1}"),
            p + ": \"rows\" must be a whole number >= 0 (examples explained), got -1" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"logit\", \"rows\": 1}"),
            p + ": \"classes\" must be an array of {\"label\", \"features\"}, got nothing" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"logit\", \"rows\": 1, \"classes\": [{\"features\": []}]}"),
            p + ": classes[0] must be {\"label\": string, \"features\": [...]}, got {\"features\":[]}" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"logit\", \"rows\": 1, \"classes\": [{\"label\": \"a\", "
                "\"features\": [{\"feature\": \"x\", \"mean_abs\": -0.5}]}]}"),
            p + ": classes[0].features[0].mean_abs must be a finite number >= 0 (a mean absolute attribution), got -0.5" + fix);
  EXPECT_EQ(msg("{\"method\": \"ig\", \"space\": \"logit\", \"rows\": 1, \"classes\": [], \"overall\": {}}"),
            p + ": overall must be an array of {\"feature\", \"mean_abs\"}, got {}" + fix);
}

const char* kManifest = R"({"format_version": 2, "task": "text-classification", "labels": ["a", "b<i>"],
  "inputs": [{"name": "bag_indices", "dtype": "int64", "shape": ["n"]}],
  "model": {"family": "linear"}, "created_at": "2026-11-30T00:00:00Z",
  "metrics": {"test": {"labels": ["a", "b<i>"], "n": 4, "accuracy": 0.75, "macro_f1": 0.7,
    "per_class": {"a": {"precision": 1, "recall": 0.5, "f1": 0.667, "support": 2},
                  "b<i>": {"precision": 0.667, "recall": 1, "f1": 0.8, "support": 2}},
    "confusion_matrix": [[1, 1], [0, 2]], "ece": 0.1, "reliability": [{"mean_confidence": 0.7, "accuracy": 0.75, "count": 4}]}}})";

TEST(RunPageImportance, DrawnWhenPresentExplainedWhenAbsentSkippedWhenMalformed) {
  TempDir t;
  const fs::path model = t.path() / "model";
  write(model / "kiln.json", kManifest);
  {
    const std::string h = run_page(load_run(t.path().string()));
    EXPECT_TRUE(contains(h, "holds no importance.json. To see them, run `kiln explain " + model.string() + " --global`"));
    EXPECT_FALSE(data_block(h).contains("importance-class-0"));
  }
  write(model / "importance.json", kImportance);
  {
    const auto run = load_run(t.path().string());
    EXPECT_EQ(run.importance_path, (model / "importance.json").string());
    ASSERT_TRUE(run.importance.has_value());
    const std::string h = run_page(run);
    const auto d = data_block(h);
    EXPECT_EQ(d["importance-class-0"]["data"]["labels"], (nlohmann::json{"y", "x"}));
    EXPECT_EQ(d["importance-overall"]["data"]["values"], (nlohmann::json{0.2}));
    EXPECT_FALSE(d.contains("importance-class-1")) << "a class without features gets no chart";
    EXPECT_TRUE(contains(h, "<summary>b&lt;i&gt;</summary>"));
    EXPECT_TRUE(contains(h, "mean |attribution| (probability)"));
  }
  write(model / "importance.json", "{\"method\": 3}");
  {
    const auto run = load_run(t.path().string());
    EXPECT_FALSE(run.importance.has_value());
    EXPECT_EQ(run.importance_error, (model / "importance.json").string() +
                                        ": \"method\" must be a string, got 3; regenerate it with `kiln explain ARTIFACT --global`");
    EXPECT_TRUE(contains(run_page(run), "Skipped: " + (model / "importance.json").string() + ": &quot;method&quot;"));
  }
}

TEST(ServerPage, ReportLivePanelAndTryItBox) {
  TempDir t;
  write(t.path() / "kiln.json", kManifest);
  write(t.path() / "importance.json", kImportance);
  LivePageOptions o;
  o.poll_ms = 1500;
  const std::string h = server_page(t.path().string(), "news", o);
  const auto d = data_block(h);
  EXPECT_TRUE(contains(h, "<title>Kiln served model: news</title>"));
  EXPECT_TRUE(contains(h, "<form id=\"try-form\" hidden>")) << "shown by the script only: without it the form cannot post JSON";
  EXPECT_TRUE(contains(h, "<textarea id=\"try-text\""));
  EXPECT_FALSE(contains(h, "type=\"file\"")) << "a text model takes no image";
  EXPECT_TRUE(contains(h, "<noscript>"));
  EXPECT_TRUE(contains(h, "connect-src 'self'"));
  EXPECT_FALSE(contains(h, "/v1/admin")) << "the page never calls an admin route";
  for (const char* id : {"live-rate-chart", "live-latency-chart", "live-confidence", "live-labels", "live-drift",
                         "classification-report", "confusion-counts", "reliability", "importance-class-0"}) {
    EXPECT_TRUE(d.contains(id)) << id;
  }
  EXPECT_EQ(d["live"]["poll_ms"], 1500);
  EXPECT_EQ(d["live"]["top_k"], 2) << "top_k is capped at the model's classes";
  EXPECT_EQ(d["live"]["model"], "news");
  EXPECT_EQ(d["classification-report"]["data"]["accuracy"], 0.75);
}

TEST(ServerPage, AnImageModelGetsAFileInput) {
  RunFiles run;
  run.dir = "m";
  run.manifest = nlohmann::json::parse(kManifest);
  run.manifest["inputs"] = {{{"name", "pixel_values"}, {"dtype", "float32"}, {"shape", {"n", 3, 32, 32}}},
                            {{"name", "input_ids"}, {"dtype", "int64"}, {"shape", {"n", "s"}}}};
  const std::string h = server_page(run, "m");
  EXPECT_TRUE(contains(h, "<input type=\"file\" id=\"try-image\" accept=\"image/*\">"));
  EXPECT_TRUE(contains(h, "<textarea id=\"try-text\"")) << "text + image: both inputs";
  EXPECT_TRUE(contains(h, "img-src data:")) << "the chosen image's preview";
  const auto d = data_block(h);
  EXPECT_TRUE(d["live"]["has_image"].get<bool>());
  EXPECT_TRUE(contains(h, "{\\&quot;inputs\\&quot;") || contains(h, "{&quot;inputs&quot;: [{&quot;text&quot;"))
      << "the command-line example uses the inputs shape";
}

TEST(ServerPage, UnreadableRunFilesLeaveTheLivePartsAndSayWhy) {
  TempDir t;
  write(t.path() / "model" / "kiln.json", kManifest);
  write(t.path() / "metrics.jsonl", "{\"type\":\"step\"\n");
  const std::string h = server_page((t.path() / "model").string(), "m");
  EXPECT_TRUE(contains(h, "<p class=\"err\">The report part of this page is missing: " + (t.path() / "metrics.jsonl").string() +
                              ":1: not a JSON record"));
  EXPECT_TRUE(contains(h, "id=\"try-form\""));
  EXPECT_TRUE(data_block(h).contains("live-rate-chart"));
}

TEST(LivePageOptions, ValidateNamesTheField) {
  LivePageOptions o;
  o.poll_ms = 10;
  EXPECT_EQ(message_of([&] { o.validate(); }), "live page poll_ms must be >= 250 (milliseconds), got 10");
  o = {};
  o.top_k = 0;
  EXPECT_EQ(message_of([&] { o.validate(); }), "live page top_k must be >= 1, got 0");
  o = {};
  o.metrics_path = "http://evil.example/metrics";
  EXPECT_EQ(message_of([&] { o.validate(); }),
            "live page route 'http://evil.example/metrics' must be a path on the server itself (\"/metrics\")");
}

}  // namespace
}  // namespace kiln::report
