#include "kiln/serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::serve {
namespace {

// A one-shot latch (C++17 has no std::latch): wait() blocks until open() was called, then never again.
class Latch {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = false;
};

// Probability of class 0 = the text's length / 100; records every forward pass's size.
// A gated model holds its forward passes until release(): its first pass opens entered() (the
// worker is now busy with it, so later requests queue up behind it).
class FakeModel final : public BatchModel {
 public:
  enum class Gate { kOpen, kClosed };
  explicit FakeModel(Gate gate = Gate::kOpen, bool fail = false) : fail_(fail) {
    if (gate == Gate::kOpen) release_.open();
  }
  struct Texts final : Input {
    std::vector<std::string> texts;
  };
  std::size_t num_classes() const override { return 2; }
  std::shared_ptr<const Input> encode(const std::vector<std::string>& texts) const override {
    if (texts.front() == "unencodable") throw std::runtime_error("cannot encode");
    auto in = std::make_shared<Texts>();
    in->texts = texts;
    return in;
  }
  std::vector<float> predict_proba(const std::vector<const Input*>& inputs) const override {
    std::vector<std::string> texts;
    for (const Input* in : inputs) {
      const auto& t = static_cast<const Texts*>(in)->texts;
      texts.insert(texts.end(), t.begin(), t.end());
    }
    calls_++;
    largest_ = std::max<std::size_t>(largest_, texts.size());
    entered_.open();
    release_.wait();
    if (fail_) throw std::runtime_error("model exploded");
    std::vector<float> out;
    for (const auto& t : texts) {
      const float p = static_cast<float>(t.size()) / 100.0f;
      out.push_back(p);
      out.push_back(1.0f - p);
    }
    return out;
  }
  /// Blocks until a forward pass has started.
  void wait_entered() const { entered_.wait(); }
  /// Lets every held and later forward pass run.
  void release() const { release_.open(); }
  mutable std::atomic<int> calls_{0};
  mutable std::atomic<std::size_t> largest_{0};

 private:
  bool fail_;
  mutable Latch entered_, release_;
};

TEST(Batcher, AnswersEachRequestWithItsOwnRows) {
  Batcher b({});
  auto model = std::make_shared<FakeModel>();
  auto f = b.submit(model, {"abc", "abcdefghij"});
  ASSERT_TRUE(f);
  const auto r = f->get();
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.classes, 2u);
  ASSERT_EQ(r.probabilities.size(), 4u);
  EXPECT_FLOAT_EQ(r.probabilities[0], 0.03f);
  EXPECT_FLOAT_EQ(r.probabilities[2], 0.10f);
}

TEST(Batcher, SubmitEncodedRunsTheCallersEncodingAndAnswersThroughTheCallback) {
  Batcher b({});
  auto model = std::make_shared<FakeModel>();
  auto input = model->encode({"abcde"});
  std::promise<BatchResult> got;
  ASSERT_TRUE(b.submit_encoded(model, input, 1, false, [&](BatchResult r) { got.set_value(std::move(r)); }));
  const auto r = got.get_future().get();
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.probabilities.size(), 2u);
  EXPECT_FLOAT_EQ(r.probabilities[0], 0.05f);
  EXPECT_THROW((void)b.submit_encoded(model, nullptr, 1, false, [](BatchResult) {}), Error);
  b.stop();
  EXPECT_FALSE(b.submit_encoded(model, input, 1, false, [](BatchResult) { FAIL() << "a stopped batcher answered"; }));
}

TEST(Batcher, GroupsConcurrentRequestsUpToMaxBatch) {
  BatcherOptions o;
  o.max_batch = 8;
  std::atomic<std::size_t> batches{0};
  Batcher b(o, [&](std::size_t) { batches++; });
  // The first request holds the worker; 40 more queue up meanwhile.
  auto slow = std::make_shared<FakeModel>(FakeModel::Gate::kClosed);
  std::vector<std::future<BatchResult>> futures;
  auto first = b.submit(slow, {"x"});
  slow->wait_entered();
  for (int i = 0; i < 40; ++i) {
    auto f = b.submit(slow, {std::string(static_cast<std::size_t>(i % 50), 'a')});
    if (!f) slow->release();  // let the worker finish before the assertion returns
    ASSERT_TRUE(f);
    futures.push_back(std::move(*f));
  }
  EXPECT_EQ(b.queue_depth(), 40u);
  slow->release();
  for (int i = 0; i < 40; ++i) {
    const auto r = futures[static_cast<std::size_t>(i)].get();
    ASSERT_FALSE(r.error);
    EXPECT_FLOAT_EQ(r.probabilities[0], static_cast<float>(i % 50) / 100.0f) << i;
    EXPECT_LE(r.batch_texts, 8u);
  }
  first->get();
  b.stop();  // on_batch runs after the futures are set: wait for the last one
  EXPECT_EQ(slow->largest_.load(), 8u);
  EXPECT_EQ(batches.load(), 1u + 40u / 8u);  // "x" alone, then five full batches: not one pass per request
}

TEST(Batcher, OversizedRequestRunsAlone) {
  BatcherOptions o;
  o.max_batch = 4;
  Batcher b(o);
  auto model = std::make_shared<FakeModel>();
  std::vector<std::string> many(10, "abc");
  auto r = b.submit(model, many)->get();
  EXPECT_EQ(r.probabilities.size(), 20u);
  EXPECT_EQ(r.batch_texts, 10u);
}

TEST(Batcher, NeverMixesModels) {
  BatcherOptions o;
  o.max_batch = 64;
  Batcher b(o);
  auto old_model = std::make_shared<FakeModel>(FakeModel::Gate::kClosed);
  auto new_model = std::make_shared<FakeModel>();
  auto first = b.submit(old_model, {"a"});
  old_model->wait_entered();  // the worker holds "a"; the next three queue up behind it
  auto a = b.submit(old_model, {"bb"});
  auto c = b.submit(new_model, {"ccc"});
  auto d = b.submit(old_model, {"dddd"});
  old_model->release();
  first->get();
  EXPECT_FLOAT_EQ(a->get().probabilities[0], 0.02f);
  EXPECT_FLOAT_EQ(c->get().probabilities[0], 0.03f);
  EXPECT_FLOAT_EQ(d->get().probabilities[0], 0.04f);
  EXPECT_EQ(new_model->calls_.load(), 1);
  EXPECT_EQ(old_model->calls_.load(), 3);  // "a", then "bb" alone (the next job is another model), then "dddd"
}

TEST(Batcher, RefusesWhenTheQueueIsFull) {
  BatcherOptions o;
  o.max_queue = 3;
  Batcher b(o);
  auto slow = std::make_shared<FakeModel>(FakeModel::Gate::kClosed);
  auto running = b.submit(slow, {"a"});
  slow->wait_entered();  // the worker holds "a"
  EXPECT_EQ(b.queue_depth(), 0u);
  auto q1 = b.submit(slow, {"b", "c"});
  EXPECT_EQ(b.queue_depth(), 2u);
  EXPECT_FALSE(b.submit(slow, {"d", "e"}));  // 2 + 2 > 3
  EXPECT_TRUE(b.submit(slow, {"f"}));        // 2 + 1 <= 3
  slow->release();
  ASSERT_TRUE(q1);
  running->get();
  q1->get();
}

TEST(Batcher, ModelErrorsReachEveryRequestOfTheBatch) {
  Batcher b({});
  auto bad = std::make_shared<FakeModel>(FakeModel::Gate::kOpen, true);
  auto r = b.submit(bad, {"a"})->get();
  ASSERT_TRUE(r.error);
  EXPECT_THROW(std::rethrow_exception(r.error), std::runtime_error);
  // The batcher keeps working.
  auto good = std::make_shared<FakeModel>();
  EXPECT_FALSE(b.submit(good, {"a"})->get().error);
}

TEST(Batcher, EncodingErrorsReachOnlyTheirRequest) {
  Batcher b({});
  auto model = std::make_shared<FakeModel>();
  auto bad = b.submit(model, {"unencodable"});
  ASSERT_TRUE(bad.has_value());
  const auto r = bad->get();
  ASSERT_TRUE(r.error);
  try {
    std::rethrow_exception(r.error);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "cannot encode");
  }
  EXPECT_EQ(model->calls_.load(), 0);  // never reached a forward pass
  EXPECT_EQ(b.queue_depth(), 0u);
  const auto ok = b.submit(model, {"abcd"})->get();
  ASSERT_FALSE(ok.error);
  EXPECT_FLOAT_EQ(ok.probabilities[0], 0.04f);
}

TEST(Batcher, StopFinishesQueuedRequestsThenRefuses) {
  BatcherOptions o;
  o.max_queue = std::size_t{1} << 40;  // a refusal below means "stopping", never "full"
  Batcher b(o);
  auto slow = std::make_shared<FakeModel>(FakeModel::Gate::kClosed);
  std::vector<std::future<BatchResult>> fs;
  fs.push_back(std::move(*b.submit(slow, {"abc"})));
  slow->wait_entered();  // the worker holds the first request: the next four stay queued
  for (int i = 0; i < 4; ++i) fs.push_back(std::move(*b.submit(slow, {"abc"})));
  std::thread stopper([&] { b.stop(); });
  // stop() has begun once submit() refuses; requests accepted until then must be answered too.
  for (;;) {
    auto probe = b.submit(slow, {"probe"});
    if (!probe) break;
    fs.push_back(std::move(*probe));
    std::this_thread::yield();
  }
  EXPECT_GE(b.queue_depth(), 4u);  // still queued while stopping
  slow->release();
  stopper.join();
  for (auto& f : fs) EXPECT_FALSE(f.get().error);
  EXPECT_EQ(b.queue_depth(), 0u);
  EXPECT_FALSE(b.submit(slow, {"late"}));
}

TEST(Batcher, WaitsForArrivingRequestsOnlyUpToTheDelay) {
  BatcherOptions o;
  o.max_delay_ms = 40;
  Batcher b(o);
  auto model = std::make_shared<FakeModel>();
  // Nobody arriving: answered at once.
  auto t0 = std::chrono::steady_clock::now();
  b.submit(model, {"a"})->get();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  // One request announced but never submitted: the batch waits out the delay, then runs.
  b.arriving();
  t0 = std::chrono::steady_clock::now();
  b.submit(model, {"a"})->get();
  const auto waited = std::chrono::steady_clock::now() - t0;
  b.arrived();
  EXPECT_GE(waited, std::chrono::milliseconds(35));
  EXPECT_LT(waited, std::chrono::milliseconds(400));
}

TEST(Batcher, DeferredRequestsRunOnTheCallingThreadJoinedUpToMaxBatch) {
  BatcherOptions o;
  o.max_batch = 4;
  std::vector<std::size_t> batches;  // on_batch runs where the batch runs: this thread
  Batcher b(o, [&](std::size_t n) { batches.push_back(n); });
  auto model = std::make_shared<FakeModel>();
  std::vector<BatchResult> got(3);
  std::vector<std::thread::id> where(3);
  const std::vector<std::vector<std::string>> requests = {{"ab", "abcd"}, {"abcdef"}, {"a", "abc"}};
  for (std::size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(b.defer_here(model, model->encode(requests[i]), requests[i].size(), [&, i](BatchResult r) {
      got[i] = std::move(r);
      where[i] = std::this_thread::get_id();
    }));
  }
  EXPECT_EQ(model->calls_.load(), 0) << "nothing runs before run_here()";
  EXPECT_EQ(b.queue_depth(), 5u);
  EXPECT_EQ(b.run_here(), 3u);
  // 2 + 1 texts fit max_batch 4; the third request (2 more) starts the next batch.
  EXPECT_EQ(batches, (std::vector<std::size_t>{3, 2}));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(where[i], std::this_thread::get_id());
    ASSERT_FALSE(got[i].error);
    ASSERT_EQ(got[i].probabilities.size(), 2 * requests[i].size());
    for (std::size_t t = 0; t < requests[i].size(); ++t) {
      EXPECT_FLOAT_EQ(got[i].probabilities[2 * t], static_cast<float>(requests[i][t].size()) / 100.0f);
    }
  }
  EXPECT_EQ(got[0].batch_texts, 3u);
  EXPECT_EQ(got[2].batch_texts, 2u);
  EXPECT_EQ(b.queue_depth(), 0u);
  EXPECT_EQ(b.run_here(), 0u);
  EXPECT_THROW((void)b.defer_here(model, nullptr, 1, [](BatchResult) {}), Error);
}

TEST(Batcher, StopAnswersDeferredRequestsThenRefusesThem) {
  Batcher b({});
  auto model = std::make_shared<FakeModel>();
  bool answered = false;
  ASSERT_TRUE(b.defer_here(model, model->encode({"ab"}), 1, [&](BatchResult r) { answered = !r.error; }));
  b.stop();
  EXPECT_TRUE(answered);
  EXPECT_FALSE(b.defer_here(model, model->encode({"ab"}), 1, [](BatchResult) { FAIL() << "a stopped batcher answered"; }));
}

TEST(Batcher, RunsInlineOnlyOnceAPassMeasuredUnderTheBudget) {
  auto model = std::make_shared<FakeModel>();
  BatcherOptions o;
  o.inline_max_us = 100000;  // 0.1 s: any pass of the fake model
  Batcher cheap(o);
  EXPECT_FALSE(cheap.runs_inline()) << "nothing measured yet";
  ASSERT_FALSE(cheap.submit(model, {"abc"})->get().error);
  EXPECT_TRUE(cheap.runs_inline());
  o.inline_max_us = 0.001;  // 1 ns: no pass is that fast
  Batcher slow(o);
  ASSERT_FALSE(slow.submit(model, {"abc"})->get().error);
  EXPECT_FALSE(slow.runs_inline());
  o.inline_max_us = 0;  // off
  Batcher off(o);
  ASSERT_FALSE(off.submit(model, {"abc"})->get().error);
  EXPECT_FALSE(off.runs_inline());
}

TEST(BatcherOptions, ValidationNamesTheField) {
  BatcherOptions o;
  o.max_batch = 0;
  try {
    o.validate();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "serve.max_batch must be >= 1, got 0");
  }
  o = {};
  o.max_delay_ms = -1;
  EXPECT_THROW(o.validate(), ConfigError);
  o = {};
  o.workers = 0;
  EXPECT_THROW(o.validate(), ConfigError);
  o = {};
  o.inline_max_us = -1;
  try {
    o.validate();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "serve.inline_max_us must be in [0, 100000], got -1");
  }
}

}  // namespace
}  // namespace kiln::serve
