// GET / and /index.html: the page ServerOptions::home_page renders, cached, regenerated on reload,
// 404 without one, and a page that fails to render costs GET / only (500 with a request id).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "kiln/serve/server.h"
#include "server_thread.h"
#include "raw_http_client.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using testing::RawResponse;
using testing::request;

const fs::path kFixture = KILN_FIXTURES_DIR "/format1/linear";

class Running {
 public:
  explicit Running(ServerOptions o) {
    o.port = 0;
    o.drift_window = 50;
    server = std::make_unique<Server>(kFixture.string(), std::move(o));
    running = std::make_unique<kiln::test::ServerThread>(*server);
  }
  int port() const { return server->port(); }
  std::unique_ptr<Server> server;
  std::unique_ptr<kiln::test::ServerThread> running;  // after server: stops it first
};

TEST(HomePage, RenderedOnceServedFromCacheRegeneratedOnReload) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  ServerOptions o;
  o.model_name = "news";
  o.home_page = [calls](const std::string& dir, const std::string& name) {
    const int n = ++*calls;
    return "<!DOCTYPE html><title>" + name + " " + std::to_string(n) + "</title>" + fs::path(dir).filename().string();
  };
  Running s(o);
  EXPECT_EQ(calls->load(), 1) << "rendered when the server starts";
  const RawResponse a = request(s.port(), "GET", "/");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(a.headers.at("cache-control"), "no-cache");
  EXPECT_EQ(a.headers.at("x-content-type-options"), "nosniff");
  EXPECT_EQ(a.body, "<!DOCTYPE html><title>news 1</title>linear");
  EXPECT_EQ(request(s.port(), "GET", "/index.html").body, a.body);
  EXPECT_EQ(calls->load(), 1) << "served from the cache, not rendered per request";
  EXPECT_EQ(request(s.port(), "POST", "/", "{}").status, 405);
  (void)s.server->reload();
  EXPECT_EQ(calls->load(), 2) << "a reload renders the page of the new model";
  EXPECT_EQ(request(s.port(), "GET", "/").body, "<!DOCTYPE html><title>news 2</title>linear");
  const RawResponse m = request(s.port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("kiln_requests_total{route=\"/\",code=\"200\"} 3"), std::string::npos) << m.body;
}

TEST(HomePage, WithoutAPageGetSlashIsAnUnknownRoute) {
  Running s(ServerOptions{});
  const RawResponse r = request(s.port(), "GET", "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "not_found");
  EXPECT_NE(r.body.find("this server has no page (--no-page)"), std::string::npos) << r.body;
}

TEST(HomePage, APageThatFailsCostsGetSlashOnly) {
  ServerOptions o;
  o.home_page = [](const std::string&, const std::string&) -> std::string { throw std::runtime_error("disk on fire"); };
  Running s(o);
  const RawResponse r = request(s.port(), "GET", "/");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("disk on fire"), std::string::npos) << "the details stay in the log: " << r.body;
  EXPECT_TRUE(nlohmann::json::parse(r.body)["error"].contains("request_id")) << r.body;
  EXPECT_EQ(request(s.port(), "POST", "/v1/predict", "{\"texts\": [\"a b c\"]}").status, 200) << "the model still serves";
}

}  // namespace
}  // namespace kiln::serve
