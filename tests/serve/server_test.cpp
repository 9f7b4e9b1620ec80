// The server end to end over a small committed artifact (tests/fixtures/format1/linear): clean
// errors (a model that throws, malformed inputs), admin safety (loopback-only without a token,
// reload confined to the model root), and the Open Inference Protocol (KServe v2) against the
// protocol's published request and response shapes.
#include "kiln/serve/server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "server_thread.h"
#include "raw_http_client.h"
#include "served_model.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using testing::RawResponse;
using testing::request;

const fs::path kFixture = KILN_FIXTURES_DIR "/format1/linear";

/// Loads like the real model, then fails every forward pass as LibTorch does: a message followed by
/// its C++ backtrace and source paths.
class ThrowingModel : public ServedModel {
 public:
  using ServedModel::ServedModel;
  using ServedModel::predict_proba;
  std::vector<float> predict_proba(const std::vector<const Input*>&) const override {
    throw std::runtime_error(
        "shape '[2, -1]' is invalid for input of size 3\nException raised from view at "
        "/build/pytorch/aten/src/ATen/native/TensorShape.cpp:3243 (most recent call first):\n"
        "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x55");
  }
};

/// Captures log lines for the test's lifetime.
class LogCapture {
 public:
  LogCapture() {
    core::set_log_sink([this](core::LogLevel, std::string_view m) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(m);
    });
  }
  ~LogCapture() { core::set_log_sink({}); }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

class Running {
 public:
  Running(const std::string& artifact, ServerOptions o, ModelLoader loader = {}) {
    o.port = 0;
    o.drift_window = 50;
    server = std::make_unique<Server>(artifact, std::move(o), std::move(loader));
    running = std::make_unique<kiln::test::ServerThread>(*server);
  }
  int port() const { return server->port(); }
  std::unique_ptr<Server> server;
  std::unique_ptr<kiln::test::ServerThread> running;  // after server: stops it first
};

nlohmann::json body_json(const RawResponse& r) { return nlohmann::json::parse(r.body); }

void expect_clean(const std::string& body) {
  for (const char* leak : {"json.exception", "frame #", ".cpp", "c10::", "most recent call", "what()", "ATen"}) {
    EXPECT_EQ(body.find(leak), std::string::npos) << "response leaks '" << leak << "': " << body;
  }
}

TEST(ServerErrors, AModelThatThrowsAnswers500WithARequestIdThatTheLogCarries) {
  LogCapture log;
  Running s(kFixture.string(), {}, [](const std::string& dir, std::size_t window, const std::string& device) {
    return std::make_shared<ThrowingModel>(dir, window, device);
  });
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/predict", R"({"texts": ["moon boat"]})"},
           {"/v2/models/linear/infer", R"({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["moon"]}]})"}}) {
    SCOPED_TRACE(path);
    const RawResponse r = request(s.port(), "POST", path, body);
    ASSERT_EQ(r.status, 500);
    expect_clean(r.body);
    const auto j = body_json(r);
    const std::string id = path == "/v1/predict" ? j["error"]["request_id"].get<std::string>() : j["request_id"].get<std::string>();
    ASSERT_FALSE(id.empty());
    EXPECT_NE(r.body.find("the model failed"), std::string::npos) << r.body;
    bool logged = false;
    for (const auto& line : log.lines()) {
      if (line.find(id) != std::string::npos && line.find("is invalid for input of size 3") != std::string::npos) {
        logged = true;
        EXPECT_EQ(line.find("frame #"), std::string::npos) << "the log line keeps the first line only: " << line;
      }
    }
    EXPECT_TRUE(logged) << "no log line carries " << id;
  }
  // The server keeps answering after failures.
  EXPECT_EQ(request(s.port(), "GET", "/healthz").status, 200);
}

/// Counts encode() calls: drift must reuse the prediction's encoding, not encode again.
class CountingModel : public ServedModel {
 public:
  using ServedModel::ServedModel;
  std::shared_ptr<const Input> encode(const std::vector<std::string>& texts) const override {
    encodes += texts.size();
    return ServedModel::encode(texts);
  }
  mutable std::atomic<std::size_t> encodes{0};
};

TEST(ServerDrift, DriftReusesThePredictionsEncoding) {
  std::shared_ptr<const CountingModel> model;
  Running s(kFixture.string(), {}, [&model](const std::string& dir, std::size_t window, const std::string& device) {
    auto m = std::make_shared<CountingModel>(dir, window, device);
    model = m;
    return m;
  });
  ASSERT_EQ(request(s.port(), "POST", "/v1/predict", R"({"texts": ["moon boat", "salt pan"]})").status, 200);
  ASSERT_EQ(request(s.port(), "POST", "/v2/models/linear/infer",
                    R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["tide"]}]})")
                .status,
            200);
  // Drift runs on its own thread: wait (bounded) until it has seen the three texts.
  for (int i = 0; i < 3000 && model->drift().window < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(model->drift().window, 3u);
  EXPECT_EQ(model->encodes.load(), 3u) << "each text is encoded once, for the prediction and drift together";
}

TEST(ServerDrift, ObservingWithOrWithoutTheEncodingAgreesAndMeasuresEverySignal) {
  const std::vector<std::string> texts = {"light anchor anchor mast rope boat tide", "moon nebula wind boat",
                                          "salt flour oven", "zzz unknown words here"};
  ServedModel reused(kFixture.string(), 10), fresh(kFixture.string(), 10);
  reused.observe_drift(texts, reused.encode(texts).get());
  fresh.observe_drift(texts);
  const DriftReport a = reused.drift(), b = fresh.drift();
  EXPECT_EQ(a.window, 4u);
  EXPECT_EQ(a.window, b.window);
  EXPECT_DOUBLE_EQ(a.length_psi, b.length_psi);
  EXPECT_DOUBLE_EQ(a.oov_rate, b.oov_rate);
  EXPECT_GT(a.oov_rate, 0.0);  // "zzz unknown words here" is outside the vocabulary
  EXPECT_EQ(a.top_feature_shares, b.top_feature_shares);
  EXPECT_GT(*std::max_element(a.top_feature_shares.begin(), a.top_feature_shares.end()), 0.0);
}

TEST(ServerErrors, MalformedInputsAnswerInTheServersOwnWords) {
  Running s(kFixture.string(), {});
  struct Case {
    std::string body;
    int status;
    const char* code;
    const char* fragment;
  };
  const Case cases[] = {
      {R"({"texts": [1e400]})", 400, "invalid_json", "outside the range"},
      {R"({"texts": ["a"], "top_k": 1e400})", 400, "invalid_json", "outside the range"},
      {R"({"texts": ["a")", 400, "invalid_json", "at byte 15: the body ends"},
      {"{\"texts\": [\"\xff\xfe\"]}", 400, "invalid_json", "not UTF-8"},
      {"{\"texts\": [\"a\x01\"]}", 400, "invalid_json", "control character"},
      {R"({"texts": ["\uD800"]})", 400, "invalid_json", "escape"},
      {R"({"texts": @})", 400, "invalid_json", "unexpected character '@'"},
      {R"({"texts": [null]})", 400, "wrong_type", "texts[0] must be a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const RawResponse r = request(s.port(), "POST", "/v1/predict", c.body);
    EXPECT_EQ(r.status, c.status);
    expect_clean(r.body);
    EXPECT_EQ(r.body.find("parse_error"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("syntax error while parsing"), std::string::npos) << r.body;
    const auto j = body_json(r);
    EXPECT_EQ(j["error"]["code"], c.code);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.fragment), std::string::npos) << r.body;
  }
  const RawResponse r = request(s.port(), "POST", "/v1/admin/reload", R"({"artifact": 1e999})");
  EXPECT_EQ(r.status, 400);
  expect_clean(r.body);
}

TEST(ServerAdmin, AHostBeyondLoopbackNeedsAToken) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("10.0.0.7"));
  EXPECT_FALSE(is_loopback_host("::"));
  ServerOptions o;
  o.host = "0.0.0.0";
  try {
    o.validate();
    FAIL() << "0.0.0.0 without a token was accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--host 0.0.0.0"), std::string::npos) << m;
    EXPECT_NE(m.find("--auth-token-file"), std::string::npos) << m;
    EXPECT_NE(m.find("127.0.0.1"), std::string::npos) << m;
  }
  o.auth_token = std::string(24, 'k');
  EXPECT_NO_THROW(o.validate());
}

TEST(ServerAdmin, ReloadLoadsOnlyUnderTheModelRoot) {
  const fs::path tmp = fs::temp_directory_path() / ("kiln_server_test_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "root");
  fs::copy(kFixture, tmp / "root" / "a", fs::copy_options::recursive);
  fs::copy(kFixture, tmp / "root" / "b", fs::copy_options::recursive);
  fs::copy(kFixture, tmp / "outside", fs::copy_options::recursive);
  fs::create_directory_symlink(tmp / "outside", tmp / "root" / "link");
  {
    Running s((tmp / "root" / "a").string(), {});  // default root: a's parent
    const auto reload = [&](const std::string& dir) {
      return request(s.port(), "POST", "/v1/admin/reload", nlohmann::json{{"artifact", dir}}.dump());
    };
    const RawResponse ssl = reload("/etc/ssl");
    const RawResponse missing = reload("/no/such/dir");
    for (const RawResponse* r : {&ssl, &missing}) {
      EXPECT_EQ(r->status, 403);
      EXPECT_EQ(body_json(*r)["error"]["code"], "forbidden");
      EXPECT_NE(r->body.find("--model-root"), std::string::npos) << r->body;
      EXPECT_EQ(r->body.find("missing"), std::string::npos) << r->body;
    }
    // The same answer whether the path exists or not: nothing about the host leaks.
    EXPECT_EQ(ssl.body, missing.body);
    EXPECT_EQ(reload((tmp / "outside").string()).status, 403);
    EXPECT_EQ(reload((tmp / "root" / ".." / "outside").string()).status, 403);
    EXPECT_EQ(reload((tmp / "root" / "link").string()).status, 403);  // a symbolic link out of the root
    const RawResponse ok = reload((tmp / "root" / "b").string());
    EXPECT_EQ(ok.status, 200) << ok.body;
    const RawResponse bad = reload((tmp / "root" / "nothing").string());
    EXPECT_EQ(bad.status, 422);
    expect_clean(bad.body);
  }
  {
    ServerOptions o;
    o.model_root = tmp.string();
    Running s((tmp / "root" / "a").string(), o);
    const RawResponse r = request(s.port(), "POST", "/v1/admin/reload",
                                  nlohmann::json{{"artifact", (tmp / "outside").string()}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
  }
  fs::remove_all(tmp);
}

// The Open Inference Protocol: request and response as in the KServe v2 / Triton HTTP docs
// ("Inference Request JSON Object" / "Inference Response JSON Object" and their examples).
TEST(ServerV2, HealthMetadataAndInferFollowTheProtocol) {
  Running s(kFixture.string(), {});
  for (const char* health : {"/v2/health/live", "/v2/health/ready", "/v2/models/linear/ready"}) {
    const RawResponse h = request(s.port(), "GET", health);
    EXPECT_EQ(h.status, 200) << health;
    EXPECT_EQ(h.body, "") << "health answers are the status code alone: " << health;
  }
  const auto server_meta = body_json(request(s.port(), "GET", "/v2"));
  EXPECT_EQ(server_meta["name"], "kiln");
  EXPECT_TRUE(server_meta["extensions"].is_array());
  const RawResponse meta = request(s.port(), "GET", "/v2/models/linear");
  ASSERT_EQ(meta.status, 200);
  const auto m = body_json(meta);
  EXPECT_EQ(m["name"], "linear");
  ASSERT_EQ(m["versions"].size(), 1u);
  const std::string version = m["versions"][0];
  EXPECT_EQ(m["inputs"], nlohmann::json::parse(R"([{"name":"text","datatype":"BYTES","shape":[-1]}])"));
  EXPECT_EQ(m["outputs"], nlohmann::json::parse(R"([{"name":"probabilities","datatype":"FP32","shape":[-1,3]},
                                                    {"name":"label","datatype":"BYTES","shape":[-1]}])"));

  // The protocol's example request, with this model's input.
  const std::string infer = R"({
    "id" : "42",
    "inputs" : [{"name" : "text", "shape" : [ 2 ], "datatype" : "BYTES",
                 "data" : [ "light anchor anchor mast rope boat tide", "moon nebula wind boat" ]}],
    "outputs" : [{"name" : "probabilities"}, {"name" : "label"}]
  })";
  const RawResponse r = request(s.port(), "POST", "/v2/models/linear/versions/" + version + "/infer", infer);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = body_json(r);
  EXPECT_EQ(j["model_name"], "linear");
  EXPECT_EQ(j["model_version"], version);
  EXPECT_EQ(j["id"], "42");
  ASSERT_EQ(j["outputs"].size(), 2u);
  const auto& probs = j["outputs"][0];
  EXPECT_EQ(probs["name"], "probabilities");
  EXPECT_EQ(probs["datatype"], "FP32");
  EXPECT_EQ(probs["shape"], nlohmann::json::parse("[2, 3]"));
  ASSERT_EQ(probs["data"].size(), 6u);
  // The artifact's recorded predictions for these two texts (expected_predictions.jsonl, rows 1-2),
  // probabilities in label order astro, cook, sail.
  EXPECT_NEAR(probs["data"][2].get<double>(), 0.4256288707256317, 1e-5);
  EXPECT_NEAR(probs["data"][1].get<double>(), 0.29445910453796387, 1e-5);
  EXPECT_NEAR(probs["data"][5].get<double>(), 0.3827753961086273, 1e-5);
  const auto& label = j["outputs"][1];
  EXPECT_EQ(label["name"], "label");
  EXPECT_EQ(label["datatype"], "BYTES");
  EXPECT_EQ(label["shape"], nlohmann::json::parse("[2]"));
  EXPECT_EQ(label["data"], nlohmann::json::parse(R"(["sail", "sail"])"));

  // [n, 1] shapes and nested data are the same tensor; asking for one output returns only it.
  const RawResponse one = request(s.port(), "POST", "/v2/models/linear/infer",
                                  R"({"inputs":[{"name":"text","shape":[1,1],"datatype":"BYTES","data":[["moon"]]}],
                                      "outputs":[{"name":"label"}]})");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(body_json(one)["outputs"].size(), 1u);
  EXPECT_EQ(body_json(one).count("id"), 0u);
}

TEST(ServerV2, ErrorsAreTheProtocolsErrorObject) {
  Running s(kFixture.string(), {});
  struct Case {
    std::string path, body;
    int status;
    const char* fragment;
  };
  const Case cases[] = {
      // The protocol document's own example request ("Inference Request Examples"), sent to a model
      // whose input is `text`: refused with the protocol's error object.
      {"/v2/models/linear/infer", R"({
        "id" : "42",
        "inputs" : [
          {"name" : "input0", "shape" : [ 2, 2 ], "datatype" : "UINT32", "data" : [ 1, 2, 3, 4 ]},
          {"name" : "input1", "shape" : [ 3 ], "datatype" : "BOOL", "data" : [ true ]}
        ],
        "outputs" : [{"name" : "output0"}]
      })", 400, "unexpected inference input 'input0'"},
      {"/v2/models/linear/infer", R"({"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1.0]}]})", 400, "BYTES"},
      {"/v2/models/linear/infer", R"({"inputs":[{"name":"input0","shape":[1],"datatype":"BYTES","data":["a"]}]})", 400,
       "unexpected inference input 'input0'"},
      {"/v2/models/linear/infer", R"({"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":["a"]}]})", 400,
       "shape [3]"},
      {"/v2/models/linear/infer", R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[7]}]})", 400,
       "must be a string"},
      {"/v2/models/linear/infer", R"({"inputs":[]})", 400, "inputs"},
      {"/v2/models/linear/infer", R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]}],
                                      "outputs":[{"name":"logits"}]})", 400, "unexpected inference output 'logits'"},
      {"/v2/models/linear/infer", R"({"inputs": [1e400]})", 400, "outside the range"},
      {"/v2/models/other/infer", R"({"inputs":[]})", 404, "unknown model 'other'"},
      {"/v2/models/linear/versions/9/infer", R"({"inputs":[]})", 404, "unknown version '9'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path + " " + c.body);
    const RawResponse r = request(s.port(), "POST", c.path, c.body);
    EXPECT_EQ(r.status, c.status);
    const auto j = body_json(r);
    ASSERT_TRUE(j["error"].is_string()) << r.body;  // {"error": "<message>"}
    EXPECT_NE(j["error"].get<std::string>().find(c.fragment), std::string::npos) << r.body;
    expect_clean(r.body);
  }
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/other/ready").status, 404);
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/linear/infer").status, 405);
}

// The binary tensor data extension as Triton's HTTP client sends it by default
// (InferInput.set_data_from_numpy(binary_data=True), InferRequestedOutput(binary_data=True)).
std::string bytes_element(const std::string& s) {
  const auto n = static_cast<uint32_t>(s.size());
  std::string out = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff), static_cast<char>((n >> 16) & 0xff),
                     static_cast<char>((n >> 24) & 0xff)};
  return out + s;
}

TEST(ServerV2, BinaryTensorDataExtension) {
  Running s(kFixture.string(), {});
  const std::string binary =
      bytes_element("light anchor anchor mast rope boat tide") + bytes_element("moon nebula wind boat");
  const auto send = [&](const std::string& json, const std::string& tail) {
    return request(s.port(), "POST", "/v2/models/linear/infer", json + tail,
                   "Inference-Header-Content-Length: " + std::to_string(json.size()) + "\r\n");
  };
  const std::string header = R"({"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":)" +
                             std::to_string(binary.size()) + R"(}}],"outputs":[{"name":"label","parameters":{"binary_data":true}}]})";
  const RawResponse ok = send(header, binary);
  ASSERT_EQ(ok.status, 200) << ok.body;
  const auto j = body_json(ok);
  ASSERT_EQ(j["outputs"].size(), 1u);
  EXPECT_EQ(j["outputs"][0]["data"], nlohmann::json::parse(R"(["sail", "sail"])"));  // answered as JSON data

  const RawResponse short_data = send(header, binary.substr(0, binary.size() - 3));
  EXPECT_EQ(short_data.status, 400);
  EXPECT_NE(body_json(short_data)["error"].get<std::string>().find("follow the JSON header"), std::string::npos);
  std::string bad = binary;
  bad[0] = static_cast<char>(0xff);  // the first element claims 255+ bytes
  const RawResponse overrun = send(header, bad);
  EXPECT_EQ(overrun.status, 400);
  EXPECT_NE(body_json(overrun)["error"].get<std::string>().find("claims"), std::string::npos);
  const RawResponse no_header = request(s.port(), "POST", "/v2/models/linear/infer", header + binary);
  EXPECT_EQ(no_header.status, 400);  // JSON followed by bytes, without the header: not JSON
}

TEST(ServerV2, ModelNameFlagRenamesTheModel) {
  ServerOptions o;
  o.model_name = "topics";
  Running s(kFixture.string(), o);
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/topics/ready").status, 200);
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/linear/ready").status, 404);
}

}  // namespace
}  // namespace kiln::serve
