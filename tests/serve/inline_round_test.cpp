// Round batches (Batcher::runs_inline): a small model's predict and infer requests are parsed on the
// event loop and, at the end of the loop's round, encoded and run together as one task on one
// worker instead of per request through the worker and inference threads. They must answer
// exactly as the per-request path does, each request with its own rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "kiln/serve/server.h"
#include "server_thread.h"
#include "raw_http_client.h"
#include "served_model.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using testing::RawClient;
using testing::RawResponse;
using testing::request;

const fs::path kFixture = KILN_FIXTURES_DIR "/format1/linear";

/// The real model, recording which thread ran each forward pass.
class ThreadRecordingModel : public ServedModel {
 public:
  using ServedModel::ServedModel;
  using ServedModel::predict_proba;
  std::vector<float> predict_proba(const std::vector<const Input*>& inputs) const override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads_.push_back(std::this_thread::get_id());
    }
    return ServedModel::predict_proba(inputs);
  }
  /// Passes that ran on another thread than the first pass (the inference thread: a model is
  /// measured there before its requests are batched per round).
  std::size_t passes_off_the_first_thread() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<std::size_t>(std::count_if(threads_.begin(), threads_.end(),
                                                  [&](const std::thread::id& t) { return t != threads_.front(); }));
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::thread::id> threads_;
};

class Running {
 public:
  explicit Running(double inline_max_us) {
    ServerOptions o;
    o.port = 0;
    o.drift_window = 50;
    o.batching.inline_max_us = inline_max_us;
    server = std::make_unique<Server>(kFixture.string(), std::move(o),
                                      [this](const std::string& dir, std::size_t window, const std::string& device) {
                                        auto m = std::make_shared<ThreadRecordingModel>(dir, window, device);
                                        model = m;
                                        return m;
                                      });
    running = std::make_unique<kiln::test::ServerThread>(*server);
  }
  int port() const { return server->port(); }
  std::shared_ptr<const ThreadRecordingModel> model;
  std::unique_ptr<Server> server;
  std::unique_ptr<kiln::test::ServerThread> running;  // after server: stops it first
};

const std::vector<std::string> kTexts = {"moon boat", "salt pan", "tide", "light anchor anchor mast rope boat tide",
                                         "moon nebula wind boat", "pan salt salt", "rope", "wind"};

std::string predict_body(const std::string& text) { return nlohmann::json{{"texts", {text}}, {"top_k", 2}}.dump(); }
std::string infer_body(const std::string& text) {
  return nlohmann::json{{"inputs", {{{"name", "text"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {text}}}}}}.dump();
}

/// Same labels; probabilities equal to 1e-6.
void expect_same_answer(const std::string& a, const std::string& b) {
  const auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  std::function<void(const nlohmann::json&, const nlohmann::json&)> same = [&](const nlohmann::json& x, const nlohmann::json& y) {
    if (x.is_number_float() || y.is_number_float()) {
      ASSERT_TRUE(x.is_number() && y.is_number()) << a << " vs " << b;
      EXPECT_NEAR(x.get<double>(), y.get<double>(), 1e-6) << a << " vs " << b;
    } else if (x.is_structured()) {
      ASSERT_EQ(x.type(), y.type()) << a << " vs " << b;
      ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
      for (auto it = x.begin(); it != x.end(); ++it) {
        if (x.is_object()) {
          ASSERT_TRUE(y.contains(it.key())) << a << " vs " << b;
          same(*it, y.at(it.key()));
        }
      }
      if (x.is_array()) {
        for (std::size_t i = 0; i < x.size(); ++i) same(x[i], y[i]);
      }
    } else {
      EXPECT_EQ(x, y) << a << " vs " << b;
    }
  };
  same(ja, jb);
}

struct Answers {
  std::vector<std::string> predict, infer, concurrent;
  std::size_t off_first_thread = 0;
};

Answers answers(double inline_max_us) {
  Running s(inline_max_us);
  Answers out;
  for (const auto& text : kTexts) {
    const RawResponse p = request(s.port(), "POST", "/v1/predict", predict_body(text));
    EXPECT_EQ(p.status, 200) << p.body;
    out.predict.push_back(p.body);
    const RawResponse i = request(s.port(), "POST", "/v2/models/linear/infer", infer_body(text));
    EXPECT_EQ(i.status, 200) << i.body;
    out.infer.push_back(i.body);
  }
  // Every request written before any answer is read: on the event loop, those read in one round
  // share one encoding and one forward pass, and each must still get its own rows.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (const auto& text : kTexts) {
    clients.push_back(std::make_unique<RawClient>(s.port()));
    const std::string body = predict_body(text);
    EXPECT_TRUE(clients.back()->send("POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body));
  }
  for (auto& c : clients) {
    const RawResponse r = c->read_response();
    EXPECT_EQ(r.status, 200) << r.body;
    out.concurrent.push_back(r.body);
  }
  out.off_first_thread = s.model->passes_off_the_first_thread();
  return out;
}

TEST(InlineRound, AnswersAsTheInferenceThreadsDoEachRequestWithItsOwnRows) {
  const Answers threads = answers(0);  // --inline-max-us 0: the inference thread only
  const Answers loop = answers(100000);
  EXPECT_EQ(threads.off_first_thread, 0u) << "with --inline-max-us 0 every pass runs on the one inference thread";
  EXPECT_GT(loop.off_first_thread, 0u) << "once measured cheap, the model's requests run as round batches on workers";
  for (std::size_t i = 0; i < kTexts.size(); ++i) {
    SCOPED_TRACE(kTexts[i]);
    expect_same_answer(threads.predict[i], loop.predict[i]);
    expect_same_answer(threads.infer[i], loop.infer[i]);
    expect_same_answer(threads.predict[i], loop.concurrent[i]);
    expect_same_answer(threads.predict[i], threads.concurrent[i]);
  }
}

}  // namespace
}  // namespace kiln::serve
