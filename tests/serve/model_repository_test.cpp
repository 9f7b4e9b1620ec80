// Many models in one server: what `kiln serve DIR` serves (one artifact or a repository), each
// model on its own routes (v1 and v2) and metrics label, load/unload/reload by API confined to the
// model root, unload draining the requests it had accepted, and drift's out-of-vocabulary rate
// read from the prediction's encoding.
#include "model_repository.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "kiln/artifact/artifact.h"
#include "kiln/core/error.h"
#include "kiln/serve/server.h"
#include "server_thread.h"
#include "raw_http_client.h"
#include "served_model.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using testing::RawResponse;
using testing::request;

const fs::path kFixture = KILN_FIXTURES_DIR "/format1/linear";

/// A fresh temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() / ("kiln_repo_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

/// A copy of the fixture artifact at `dir`; `created_at` changes its version.
void copy_artifact(const fs::path& dir, const std::string& created_at = "") {
  fs::copy(kFixture, dir, fs::copy_options::recursive);
  if (created_at.empty()) return;
  nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "kiln.json"));
  j["created_at"] = created_at;
  std::ofstream(dir / "kiln.json") << j.dump(2);
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class Running {
 public:
  Running(const std::string& dir, ServerOptions o, ModelLoader loader = {}) {
    o.port = 0;
    o.drift_window = 50;
    server = std::make_unique<Server>(dir, std::move(o), std::move(loader));
    running = std::make_unique<kiln::test::ServerThread>(*server);
  }
  int port() const { return server->port(); }
  std::unique_ptr<Server> server;
  std::unique_ptr<kiln::test::ServerThread> running;  // after server: stops it first
};

nlohmann::json body_json(const RawResponse& r) { return nlohmann::json::parse(r.body); }

const std::string kPredict = R"({"texts": ["light anchor anchor mast rope boat tide"]})";
const std::string kInfer = R"({"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["moon"]}]})";

TEST(ModelRepositoryLayout, OneArtifactOrARepository) {
  TempDir t;
  copy_artifact(t.path / "topics");
  // One artifact: named by its directory, or --model-name.
  auto one = discover_models((t.path / "topics").string(), "", "");
  EXPECT_TRUE(one.repository.empty());
  ASSERT_EQ(one.models.size(), 1u);
  EXPECT_EQ(one.models[0].first, "topics");
  EXPECT_EQ(one.default_model, "topics");
  EXPECT_EQ(discover_models((t.path / "topics").string(), "news", "").default_model, "news");
  EXPECT_NE(error_of([&] { (void)discover_models((t.path / "topics").string(), "", "other"); })
                .find("--default-model other: this server serves one model, 'topics'"),
            std::string::npos);
  // A repository of one: the only model is the default.
  auto repo = discover_models(t.path.string(), "", "");
  EXPECT_EQ(repo.repository, t.path.lexically_normal().string());
  EXPECT_EQ(repo.default_model, "topics");
  // Several: a default is required, and the error lists the models.
  copy_artifact(t.path / "alpha");
  fs::create_directories(t.path / "not-a-model");  // no kiln.json: not a model
  const std::string several = error_of([&] { (void)discover_models(t.path.string(), "", ""); });
  EXPECT_NE(several.find("holds 2 models (alpha, topics); choose the one /v1/predict serves with --default-model NAME"),
            std::string::npos)
      << several;
  repo = discover_models(t.path.string(), "", "alpha");
  ASSERT_EQ(repo.models.size(), 2u);
  EXPECT_EQ(repo.models[0].first, "alpha");
  EXPECT_EQ(repo.models[1].second, (t.path / "topics").string());
  EXPECT_EQ(repo.default_model, "alpha");
  EXPECT_NE(error_of([&] { (void)discover_models(t.path.string(), "", "zeta"); })
                .find("--default-model zeta: no such model in the repository " + t.path.string() + " (its models: alpha, topics)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)discover_models(t.path.string(), "news", "alpha"); }).find("drop --model-name"),
            std::string::npos);
  copy_artifact(t.path / "two words");
  EXPECT_NE(error_of([&] { (void)discover_models(t.path.string(), "", "alpha"); })
                .find((t.path / "two words").string() + ": the subdirectory's name cannot name a model in a URL"),
            std::string::npos);
}

TEST(ModelRepositoryLayout, AnEmptyDirectoryOrACorruptModelIsRefusedByName) {
  TempDir t;
  EXPECT_NE(error_of([&] { (void)discover_models(t.path.string(), "", ""); })
                .find(t.path.string() + ": holds no kiln.json, and none of its subdirectories does"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)discover_models((t.path / "nowhere").string(), "", ""); }).find("not found"),
            std::string::npos);
  copy_artifact(t.path / "good");
  copy_artifact(t.path / "broken");
  std::ofstream(t.path / "broken" / "kiln.json") << "{\"format_version\": 2,";
  ServerOptions o;
  o.port = 0;
  o.default_model = "good";
  const std::string e = error_of([&] { Server s(t.path.string(), o); });
  EXPECT_NE(e.find("model 'broken' of the repository " + t.path.string()), std::string::npos) << e;
  EXPECT_NE(e.find((t.path / "broken" / "kiln.json").string()), std::string::npos) << e;
  EXPECT_NE(e.find("fix or remove"), std::string::npos) << e;
}

TEST(ModelRepositoryServer, EachModelAnswersOnItsOwnRoutesAndMetricsLabel) {
  TempDir t;
  copy_artifact(t.path / "alpha", "2026-01-01T00:00:00Z");
  copy_artifact(t.path / "beta", "2026-02-02T00:00:00Z");
  ServerOptions o;
  o.default_model = "alpha";
  Running s(t.path.string(), o);
  EXPECT_EQ(s.server->model_names(), (std::vector<std::string>{"alpha", "beta"}));
  const std::string va = body_json(request(s.port(), "GET", "/v1/models/alpha"))["version"];
  const std::string vb = body_json(request(s.port(), "GET", "/v1/models/beta"))["version"];
  ASSERT_NE(va, vb);
  // /v1/predict is the default model's; /v1/models/{name}/predict and /v2/models/{name}/infer the named one's.
  for (int i = 0; i < 2; ++i) {
    const RawResponse r = request(s.port(), "POST", "/v1/predict", kPredict);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(body_json(r)["model_version"], va);
  }
  const RawResponse b1 = request(s.port(), "POST", "/v1/models/beta/predict", kPredict);
  ASSERT_EQ(b1.status, 200) << b1.body;
  EXPECT_EQ(body_json(b1)["model_version"], vb);
  const RawResponse b2 = request(s.port(), "POST", "/v2/models/beta/infer", kInfer);
  ASSERT_EQ(b2.status, 200) << b2.body;
  EXPECT_EQ(body_json(b2)["model_name"], "beta");
  EXPECT_EQ(body_json(b2)["model_version"], vb);
  EXPECT_EQ(body_json(request(s.port(), "GET", "/v2/models/beta"))["versions"][0], vb);
  EXPECT_EQ(body_json(request(s.port(), "GET", "/v1/model"))["version"], va);
  EXPECT_EQ(body_json(request(s.port(), "GET", "/readyz"))["model_version"], va);
  const auto list = body_json(request(s.port(), "GET", "/v1/models"));
  EXPECT_EQ(list["default_model"], "alpha");
  ASSERT_EQ(list["models"].size(), 2u);
  // Unknown names: 404 in each API's own error format.
  const RawResponse v1_unknown = request(s.port(), "POST", "/v1/models/gamma/predict", kPredict);
  EXPECT_EQ(v1_unknown.status, 404);
  EXPECT_EQ(body_json(v1_unknown)["error"]["code"], "model_not_found");
  EXPECT_NE(v1_unknown.body.find("'alpha', 'beta'"), std::string::npos) << v1_unknown.body;
  const RawResponse v2_unknown = request(s.port(), "POST", "/v2/models/gamma/infer", kInfer);
  EXPECT_EQ(v2_unknown.status, 404);
  ASSERT_TRUE(body_json(v2_unknown)["error"].is_string()) << v2_unknown.body;
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/gamma/ready").status, 404);
  EXPECT_EQ(request(s.port(), "GET", "/v2/models/beta/ready").status, 200);

  const std::string metrics = request(s.port(), "GET", "/metrics").body;
  for (const std::string& line : std::vector<std::string>{"kiln_texts_total{model=\"alpha\"} 2", "kiln_texts_total{model=\"beta\"} 2", "kiln_queue_depth{model=\"alpha\"} 0",
        "kiln_queue_depth{model=\"beta\"} 0", "kiln_inference_batch_size_count{model=\"beta\"} 2",
        "kiln_prediction_confidence_count{model=\"alpha\"} 2",
        "kiln_model_info{model=\"beta\",version=\"" + vb + "\"", "kiln_drift_window_texts{model=\"beta\"}",
        "kiln_requests_total{route=\"/v1/models/{name}/predict\",code=\"404\"} 1"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << "no " << line << " in\n" << metrics;
  }
  EXPECT_EQ(metrics.find("gamma"), std::string::npos) << "a name a client sent is never a label value";
}

TEST(ModelRepositoryServer, LoadUnloadAndReloadByApiWithinTheRoot) {
  TempDir t;
  fs::create_directories(t.path / "repo");
  copy_artifact(t.path / "repo" / "alpha");
  copy_artifact(t.path / "repo" / "beta");
  copy_artifact(t.path / "outside");
  ServerOptions o;
  o.default_model = "alpha";
  Running s((t.path / "repo").string(), o);
  fs::create_directory_symlink(t.path / "outside", t.path / "repo" / "link");
  const auto post = [&](const std::string& path, const std::string& body = "") {
    return request(s.port(), "POST", path, body);
  };
  // Triton's repository extension, announced in the server metadata.
  EXPECT_EQ(body_json(request(s.port(), "GET", "/v2"))["extensions"], nlohmann::json::parse(R"(["model_repository"])"));
  RawResponse r = post("/v2/repository/models/beta/unload");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(post("/v1/models/beta/predict", kPredict).status, 404);
  auto index = body_json(post("/v2/repository/index"));
  ASSERT_EQ(index.size(), 3u) << index.dump();  // alpha, beta, link (a link out of the root is listed, never loaded)
  EXPECT_EQ(index[1]["name"], "beta");
  EXPECT_EQ(index[1]["state"], "UNAVAILABLE");
  EXPECT_EQ(body_json(post("/v2/repository/index", R"({"ready": true})")).size(), 1u);
  r = post("/v2/repository/models/beta/load");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(post("/v1/models/beta/predict", kPredict).status, 200);
  // A model copied into the repository while the server runs.
  copy_artifact(t.path / "repo" / "gamma");
  EXPECT_EQ(post("/v2/repository/models/gamma/load").status, 200);
  EXPECT_EQ(post("/v2/models/gamma/infer", kInfer).status, 200);
  // Outside the root: 403, the same answer whether the path exists or not.
  const RawResponse link = post("/v2/repository/models/link/load");
  EXPECT_EQ(link.status, 403) << link.body;
  const RawResponse ssl = post("/v1/admin/load", R"({"model": "x", "artifact": "/etc/ssl"})");
  const RawResponse none = post("/v1/admin/load", R"({"model": "x", "artifact": "/no/such/dir"})");
  EXPECT_EQ(ssl.status, 403);
  EXPECT_EQ(ssl.body, none.body);
  EXPECT_EQ(post("/v1/admin/reload", R"({"model": "beta", "artifact": "/etc/ssl"})").status, 403);
  EXPECT_EQ(post("/v2/repository/models/nothing/load").status, 404);
  EXPECT_EQ(post("/v2/repository/models/two%20words/load").status, 400);
  // A broken artifact answers a clear error and leaves the others serving.
  copy_artifact(t.path / "repo" / "broken");
  std::ofstream(t.path / "repo" / "broken" / "model.safetensors") << "not weights";
  const RawResponse broken = post("/v2/repository/models/broken/load");
  EXPECT_EQ(broken.status, 400);
  const std::string message = body_json(broken)["error"];
  EXPECT_NE(message.find("model 'broken' did not load: "), std::string::npos) << message;
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("the other models keep serving"), std::string::npos) << message;
  for (const char* name : {"alpha", "beta", "gamma"}) {
    EXPECT_EQ(post(std::string("/v1/models/") + name + "/predict", kPredict).status, 200) << name;
  }
  EXPECT_EQ(post("/v1/models/broken/predict", kPredict).status, 404);
  // Kiln's admin routes: reload names a model; the default model cannot be unloaded.
  r = post("/v1/admin/reload", nlohmann::json{{"model", "beta"}, {"artifact", (t.path / "repo" / "gamma").string()}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_json(r)["model"], "beta");
  EXPECT_EQ(body_json(request(s.port(), "GET", "/v1/models/beta"))["artifact"], (t.path / "repo" / "gamma").string());
  EXPECT_EQ(post("/v1/admin/reload", R"({"model": "zeta"})").status, 404);
  EXPECT_EQ(post("/v1/admin/unload", R"({"model": "alpha"})").status, 409);
  EXPECT_EQ(post("/v2/repository/models/alpha/unload").status, 409);
  r = post("/v1/admin/unload", R"({"model": "gamma"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(post("/v1/admin/unload", R"({"model": "gamma"})").status, 404);
  EXPECT_EQ(post("/v1/predict", kPredict).status, 200);
  const std::string metrics = request(s.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("kiln_model_reloads_total{model=\"broken\",result=\"failure\"} 1"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("kiln_queue_depth{model=\"gamma\"}"), std::string::npos) << "an unloaded model's gauges go";
}

TEST(ModelRepositoryServer, RepositoryRoutesNeedTheAdminToken) {
  TempDir t;
  copy_artifact(t.path / "alpha");
  ServerOptions o;
  o.auth_token = std::string(32, 'k');
  Running s(t.path.string(), o);
  for (const char* path : {"/v2/repository/index", "/v2/repository/models/alpha/load", "/v1/admin/unload"}) {
    EXPECT_EQ(request(s.port(), "POST", path).status, 401) << path;
  }
  EXPECT_EQ(request(s.port(), "POST", "/v2/repository/index", "", "Authorization: Bearer " + o.auth_token + "\r\n").status, 200);
}

/// Holds every request inside encode() (after the server routed it to the model and before it
/// reaches the batcher) until opened, counting the requests held.
class GatedModel : public ServedModel {
 public:
  using ServedModel::ServedModel;
  std::shared_ptr<const Input> encode(const std::vector<std::string>& texts) const override {
    std::unique_lock<std::mutex> lock(mu_);
    ++held_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    lock.unlock();
    return ServedModel::encode(texts);
  }
  bool wait_held(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return held_ >= n; });
  }
  void open() const {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int held_ = 0;
  mutable bool open_ = false;
};

TEST(ModelRepositoryServer, UnloadAnswersEveryRequestItHadAccepted) {
  TempDir t;
  copy_artifact(t.path / "alpha");
  copy_artifact(t.path / "beta");
  std::mutex mu;
  std::shared_ptr<const GatedModel> beta;
  ServerOptions o;
  o.default_model = "alpha";
  o.batching.max_batch = 2;  // the requests ride in several forward passes
  o.http_threads = 8;        // the held requests, the unload, and a request to alpha each need one
  Running s(t.path.string(), o, [&](const std::string& dir, std::size_t window, const std::string& device) {
    auto m = std::make_shared<GatedModel>(dir, window, device);
    if (fs::path(dir).filename() == "alpha") m->open();
    std::lock_guard<std::mutex> lock(mu);
    if (fs::path(dir).filename() == "beta") beta = m;
    return m;
  });
  constexpr int kRequests = 5;
  std::vector<int> statuses(kRequests, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] { statuses[static_cast<std::size_t>(i)] = request(s.port(), "POST", "/v1/models/beta/predict", kPredict).status; });
  }
  // Every request has been accepted and routed to beta, and none has reached its batcher yet.
  ASSERT_TRUE(beta->wait_held(kRequests));
  std::atomic<int> unload_status{0};
  std::thread unloader([&] { unload_status = request(s.port(), "POST", "/v2/repository/models/beta/unload").status; });
  // The unload has begun once beta is off the routes; it cannot finish while its requests wait.
  int ready = 200;
  for (int i = 0; i < 6000 && ready != 404; ++i) {
    ready = request(s.port(), "GET", "/v2/models/beta/ready").status;
    if (ready != 404) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(ready, 404);
  EXPECT_EQ(unload_status.load(), 0);
  EXPECT_EQ(request(s.port(), "POST", "/v1/predict", kPredict).status, 200) << "other models keep serving";
  beta->open();
  for (auto& c : clients) c.join();
  unloader.join();
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(statuses[static_cast<std::size_t>(i)], 200) << "request " << i;
  EXPECT_EQ(unload_status.load(), 200);
  EXPECT_EQ(s.server->model_names(), std::vector<std::string>{"alpha"});
}

// Drift's out-of-vocabulary rate comes from the prediction's encoding; it equals what a second
// analysis of the texts (the preprocessor's oov_rates, the old computation) gives.
TEST(ModelRepositoryDrift, OutOfVocabularyRateEqualsASecondAnalysis) {
  const std::vector<std::string> texts = {"light anchor anchor mast rope boat tide", "moon nebula wind boat",
                                          "salt flour oven", "zzz unknown words here", "Café, naïve TIDE!", ""};
  const auto artifact = artifact::load_artifact(kFixture.string());
  const auto old = artifact.preprocessors.front()->oov_rates(texts);
  ASSERT_TRUE(old.has_value());
  const double expected = std::accumulate(old->begin(), old->end(), 0.0) / static_cast<double>(texts.size());
  ServedModel served(kFixture.string(), 10);
  served.observe_drift(texts, served.encode(texts).get());
  EXPECT_DOUBLE_EQ(served.drift().oov_rate, expected);
  EXPECT_GT(expected, 0.0);
}

}  // namespace
}  // namespace kiln::serve
