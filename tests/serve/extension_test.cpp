// The server's extension interface (extension.h): an extension's routes answer through the
// server's error body, /v1/admin/ routes of an extension need the admin token first, an exception
// is a 500 whose details stay in the log, claims on built-in or repeated paths are refused, and
// attach/detach bracket the server's life.
#include "kiln/serve/extension.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/serve/metrics.h"
#include "kiln/serve/server.h"
#include "server_thread.h"
#include "raw_http_client.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using testing::request;

const fs::path kFixture = KILN_FIXTURES_DIR "/format1/linear";

class Echo : public Extension {
 public:
  explicit Echo(std::vector<std::string> paths = {"/v1/echo", "/v1/admin/echo"}) : paths_(std::move(paths)) {}
  std::vector<std::string> routes() const override { return paths_; }
  void attach(Server& server, MetricsRegistry& metrics) override {
    attached = server.default_model();
    calls = &metrics.counter("kiln_echo_calls_total", "Echo calls.");
  }
  ExtensionResponse handle(const ExtensionRequest& r) override {
    calls->labels({}).inc();
    if (r.body == "throw") throw std::runtime_error("secret detail /src/echo.cpp:12");
    if (r.body == "bad") {
      auto a = ExtensionResponse::error(422, "bad_echo", "cannot echo 'bad'; send anything else");
      a.headers.emplace_back("X-Echo", "refused");
      return a;
    }
    return ExtensionResponse::ok(nlohmann::json{{"method", r.method}, {"path", r.path}, {"body", r.body},
                                                {"authorization", r.authorization}}
                                     .dump());
  }
  void detach() override { ++detached; }

  std::vector<std::string> paths_;
  std::string attached;
  std::atomic<int> detached{0};
  Counter* calls = nullptr;
};

class Running {
 public:
  Running(std::shared_ptr<Extension> ext, ServerOptions o = {}) {
    o.port = 0;
    o.extensions.push_back(std::move(ext));
    server = std::make_unique<Server>(kFixture.string(), std::move(o));
    running = std::make_unique<kiln::test::ServerThread>(*server);
  }
  int port() const { return server->port(); }
  std::unique_ptr<Server> server;
  std::unique_ptr<kiln::test::ServerThread> running;  // after server: stops it first
};

TEST(ServerExtension, RoutesAnswerThroughTheServer) {
  auto echo = std::make_shared<Echo>();
  {
    Running s(echo);
    EXPECT_EQ(echo->attached, "linear");
    auto r = request(s.port(), "POST", "/v1/echo", "hello", "Authorization: Bearer abc\r\n");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["body"], "hello");
    EXPECT_EQ(j["authorization"], "Bearer abc");
    r = request(s.port(), "POST", "/v1/echo", "bad");
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "bad_echo");
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["message"], "cannot echo 'bad'; send anything else");
    EXPECT_EQ(r.headers.at("x-echo"), "refused");
    r = request(s.port(), "POST", "/v1/echo", "throw");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("secret detail"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("request_id"), std::string::npos) << r.body;
    const auto metrics = request(s.port(), "GET", "/metrics").body;
    EXPECT_NE(metrics.find("kiln_echo_calls_total 3"), std::string::npos);
    EXPECT_NE(metrics.find("kiln_request_errors_total{reason=\"bad_echo\"} 1"), std::string::npos);
    EXPECT_EQ(echo->detached, 0);
  }
  EXPECT_EQ(echo->detached, 1);
}

TEST(ServerExtension, AdminPathsNeedTheAdminTokenFirst) {
  ServerOptions o;
  o.auth_token = std::string(24, 'k');
  auto echo = std::make_shared<Echo>();
  Running s(echo, o);
  auto r = request(s.port(), "POST", "/v1/admin/echo", "hi");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(echo->calls->labels({}).value(), 0);
  r = request(s.port(), "POST", "/v1/admin/echo", "hi", "Authorization: Bearer " + std::string(24, 'k') + "\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  // Its other routes are its own to guard.
  EXPECT_EQ(request(s.port(), "POST", "/v1/echo", "hi").status, 200);
}

TEST(ServerExtension, ClaimsOnBuiltInOrRepeatedPathsAreRefused) {
  for (const auto& [paths, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"/v1/predict"}, "an extension claims the route '/v1/predict', which the server answers itself"},
           {{"/v2/models/x/infer"}, "an extension claims the route '/v2/models/x/infer'"},
           {{"/v1/a", "/v1/a"}, "two extensions claim the route '/v1/a'"}}) {
    ServerOptions o;
    o.port = 0;
    o.extensions.push_back(std::make_shared<Echo>(paths));
    try {
      Server s(kFixture.string(), o);
      ADD_FAILURE() << "expected ConfigError for " << paths.front();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kiln::serve
