#include "kiln/learn/replay_buffer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

data::Example item(int i, const std::string& label = "a") {
  data::Example e;
  e.text = "item " + std::to_string(i);
  e.label = label;
  return e;
}

int index_of(const std::string& text) { return std::stoi(text.substr(5)); }

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("kiln_replay_" + name + "_" + std::to_string(::getpid()) + ".json");
}

}  // namespace

// Algorithm R keeps every item of the stream with the same probability capacity / n. Over 1,000
// seeded runs of a 1,000-item stream into 100 slots, each item's inclusion count is Binomial(1000,
// 0.1): sum (count - 100)^2 / 100 over the 1,000 items has mean 1000 x (1 - 0.1) = 900 and sd ~42
// under uniformity (6 sd either side is the bound); a
// buffer biased toward early or late items (recent mode, or a wrong replacement rule) lands far
// outside the bound. Deterministic: the seeds are fixed.
TEST(ReplayBuffer, ReservoirKeepsEveryItemWithEqualProbability) {
  constexpr int kStream = 1000, kRuns = 1000, kCapacity = 100;
  auto chi_square = [&](learn::BufferMode mode) {
    std::vector<int> kept(kStream, 0);
    for (int run = 0; run < kRuns; ++run) {
      learn::ReplayBufferOptions o;
      o.mode = mode;
      o.capacity = kCapacity;
      o.seed = 1000 + run;
      learn::ReplayBuffer b(o);
      for (int i = 0; i < kStream; ++i) (void)b.add(item(i));
      const auto ds = b.items();
      EXPECT_EQ(ds.size(), static_cast<std::size_t>(kCapacity));
      for (const auto& t : ds.texts) ++kept[index_of(t)];
    }
    const double expected = static_cast<double>(kRuns) * kCapacity / kStream;
    double chi = 0;
    for (int k : kept) chi += (k - expected) * (k - expected) / expected;
    return chi;
  };
  const double reservoir = chi_square(learn::BufferMode::kReservoir);
  EXPECT_LT(reservoir, 900 + 6 * 42.0);
  EXPECT_GT(reservoir, 900 - 6 * 42.0);
  EXPECT_GT(chi_square(learn::BufferMode::kRecent), 10000.0);  // the test can tell a biased buffer
}

TEST(ReplayBuffer, RecentKeepsTheLastItems) {
  learn::ReplayBuffer b(learn::seed_preset());
  EXPECT_EQ(b.options().capacity, 1000);
  EXPECT_EQ(b.options().batch_size, 32);
  for (int i = 0; i < 2500; ++i) (void)b.add(item(i));
  std::vector<int> got;
  for (const auto& t : b.items().texts) got.push_back(index_of(t));
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got.size(), 1000u);
  EXPECT_EQ(got.front(), 1500);
  EXPECT_EQ(got.back(), 2499);
}

// A class that is 1% of the stream and arrives last still holds its share of the balanced buffer;
// the plain reservoir keeps it in proportion (about 1 slot).
TEST(ReplayBuffer, BalancedKeepsEveryClass) {
  learn::ReplayBufferOptions o;
  o.mode = learn::BufferMode::kBalanced;
  o.capacity = 90;
  o.seed = 3;
  learn::ReplayBuffer b(o);
  for (int i = 0; i < 5000; ++i) (void)b.add(item(i, i % 2 ? "common" : "usual"));
  for (int i = 0; i < 50; ++i) (void)b.add(item(5000 + i, "rare"));
  const auto counts = b.class_counts();
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts.at("rare"), 30);
  EXPECT_EQ(counts.at("common"), 30);
  EXPECT_EQ(counts.at("usual"), 30);
  EXPECT_EQ(b.size(), 90u);
  EXPECT_EQ(b.seen(), 5050);
}

TEST(ReplayBuffer, SamplesWithoutReplacement) {
  learn::ReplayBufferOptions o;
  o.capacity = 50;
  learn::ReplayBuffer b(o);
  for (int i = 0; i < 200; ++i) (void)b.add(item(i));
  const auto s = b.sample(40);
  ASSERT_EQ(s.size(), 40u);
  std::set<std::string> unique(s.texts.begin(), s.texts.end());
  EXPECT_EQ(unique.size(), 40u);
  EXPECT_EQ(b.sample(500).size(), 50u);  // no more than it holds
}

// Saved and loaded, the buffer holds the same items and continues the same way (same generator).
TEST(ReplayBuffer, PersistenceRoundTripContinuesTheSameStream) {
  for (auto mode : {learn::BufferMode::kReservoir, learn::BufferMode::kBalanced, learn::BufferMode::kRecent}) {
    learn::ReplayBufferOptions o;
    o.mode = mode;
    o.capacity = 30;
    o.seed = 9;
    o.replay_ratio = 0.5;
    learn::ReplayBuffer a(o);
    for (int i = 0; i < 300; ++i) (void)a.add(item(i, i % 3 ? "x" : "y"));
    const auto path = temp("roundtrip");
    a.save(path.string());
    auto b = learn::ReplayBuffer::load(path.string());
    EXPECT_EQ(b.items().texts, a.items().texts);
    EXPECT_EQ(b.items().labels, a.items().labels);
    EXPECT_EQ(b.seen(), a.seen());
    EXPECT_EQ(b.options().replay_ratio, 0.5);
    for (int i = 300; i < 400; ++i) EXPECT_EQ(a.add(item(i, "z")), b.add(item(i, "z")));
    EXPECT_EQ(b.items().texts, a.items().texts);
    EXPECT_EQ(b.sample(10).texts, a.sample(10).texts);
    fs::remove(path);
  }
}

TEST(ReplayBuffer, CorruptFileNamesTheFileAndTheFix) {
  const auto path = temp("corrupt");
  learn::ReplayBuffer a;
  (void)a.add(item(1));
  a.save(path.string());
  std::string content;
  {
    std::ifstream in(path);
    std::getline(in, content);
  }
  auto expect_corrupt = [&](const std::string& text, const std::string& what) {
    std::ofstream(path) << text;
    try {
      (void)learn::ReplayBuffer::load(path.string());
      ADD_FAILURE() << "expected DataError for " << what;
    } catch (const DataError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path.string() + ": corrupt replay buffer: " + what), std::string::npos) << m;
      EXPECT_NE(m.find("delete the file to start with an empty buffer"), std::string::npos) << m;
    }
  };
  expect_corrupt(content.substr(0, content.size() / 2), "not valid JSON");
  expect_corrupt("{\"format\": \"something else\"}", "not a Kiln replay buffer file");
  auto j = nlohmann::json::parse(content);
  j["reservoirs"][0]["items"][0].erase("label");
  expect_corrupt(j.dump(), "a field is missing or has the wrong type");
  j = nlohmann::json::parse(content);
  j["mode"] = "fifo";
  expect_corrupt(j.dump(), path.string() + ": mode must be reservoir, balanced or recent, got 'fifo'");
  fs::remove(path);
}

TEST(ReplayBuffer, OptionsAreValidated) {
  learn::ReplayBufferOptions o;
  o.replay_ratio = -1;
  try {
    learn::ReplayBuffer b(o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("replay ratio must be in [0, 100] replayed items per new item, got -1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)learn::parse_buffer_mode("fifo", "--buffer"), ConfigError);
}
