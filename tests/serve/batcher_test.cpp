#include "kiln/serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::serve {
namespace {

// Probability of class 0 = the text's length / 100; records every forward pass's size.
class FakeModel final : public BatchModel {
 public:
  explicit FakeModel(int delay_ms = 0, bool fail = false) : delay_ms_(delay_ms), fail_(fail) {}
  std::size_t num_classes() const override { return 2; }
  std::vector<float> predict_proba(const std::vector<std::string>& texts) const override {
    calls_++;
    largest_ = std::max<std::size_t>(largest_, texts.size());
    if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (fail_) throw std::runtime_error("model exploded");
    std::vector<float> out;
    for (const auto& t : texts) {
      const float p = static_cast<float>(t.size()) / 100.0f;
      out.push_back(p);
      out.push_back(1.0f - p);
    }
    return out;
  }
  mutable std::atomic<int> calls_{0};
  mutable std::atomic<std::size_t> largest_{0};

 private:
  int delay_ms_;
  bool fail_;
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

TEST(Batcher, GroupsConcurrentRequestsUpToMaxBatch) {
  BatcherOptions o;
  o.max_batch = 8;
  std::atomic<std::size_t> batches{0};
  Batcher b(o, [&](std::size_t) { batches++; });
  // The first request occupies the worker for 50 ms; 40 more queue up meanwhile.
  auto slow = std::make_shared<FakeModel>(50);
  std::vector<std::future<BatchResult>> futures;
  auto first = b.submit(slow, {"x"});
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (int i = 0; i < 40; ++i) {
    auto f = b.submit(slow, {std::string(static_cast<std::size_t>(i % 50), 'a')});
    ASSERT_TRUE(f);
    futures.push_back(std::move(*f));
  }
  for (int i = 0; i < 40; ++i) {
    const auto r = futures[static_cast<std::size_t>(i)].get();
    ASSERT_FALSE(r.error);
    EXPECT_FLOAT_EQ(r.probabilities[0], static_cast<float>(i % 50) / 100.0f) << i;
    EXPECT_LE(r.batch_texts, 8u);
  }
  first->get();
  EXPECT_LE(slow->largest_.load(), 8u);
  EXPECT_LE(batches.load(), 1u + 40u / 8u + 1u);  // batched, not one pass per request
  EXPECT_GE(slow->largest_.load(), 8u);
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
  auto old_model = std::make_shared<FakeModel>(30);
  auto new_model = std::make_shared<FakeModel>(0);
  auto first = b.submit(old_model, {"a"});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto a = b.submit(old_model, {"bb"});
  auto c = b.submit(new_model, {"ccc"});
  auto d = b.submit(old_model, {"dddd"});
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
  auto slow = std::make_shared<FakeModel>(100);
  auto running = b.submit(slow, {"a"});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the worker holds "a"
  auto q1 = b.submit(slow, {"b", "c"});
  ASSERT_TRUE(q1);
  EXPECT_EQ(b.queue_depth(), 2u);
  EXPECT_FALSE(b.submit(slow, {"d", "e"}));  // 2 + 2 > 3
  EXPECT_TRUE(b.submit(slow, {"f"}));        // 2 + 1 <= 3
  running->get();
  q1->get();
}

TEST(Batcher, ModelErrorsReachEveryRequestOfTheBatch) {
  Batcher b({});
  auto bad = std::make_shared<FakeModel>(0, true);
  auto r = b.submit(bad, {"a"})->get();
  ASSERT_TRUE(r.error);
  EXPECT_THROW(std::rethrow_exception(r.error), std::runtime_error);
  // The batcher keeps working.
  auto good = std::make_shared<FakeModel>();
  EXPECT_FALSE(b.submit(good, {"a"})->get().error);
}

TEST(Batcher, StopFinishesQueuedRequestsThenRefuses) {
  Batcher b({});
  auto slow = std::make_shared<FakeModel>(20);
  std::vector<std::future<BatchResult>> fs;
  for (int i = 0; i < 5; ++i) fs.push_back(std::move(*b.submit(slow, {"abc"})));
  b.stop();
  for (auto& f : fs) EXPECT_FALSE(f.get().error);
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
}

}  // namespace
}  // namespace kiln::serve
