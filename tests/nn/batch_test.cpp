#include "kiln/nn/batch.h"

#include <gtest/gtest.h>

#include "kiln/core/error.h"
#include "kiln/nn/input_spec.h"
#include "nn_test_util.h"

namespace kiln::nn {
namespace {

using testing::make_batch;

// Three examples: {1, 4}, {}, {29, 0, 3}, with a dense per-example tensor beside the bag.
Batch sample() {
  auto b = make_batch({{{1, 1.0f}, {4, 0.5f}}, {}, {{29, 2.0f}, {0, 1.0f}, {3, 0.1f}}});
  b.set("label_ids", torch::tensor({7, 8, 9}, torch::kInt64));
  return b;
}

TEST(Batch, SliceCutsRaggedGroupsByOffsets) {
  const auto b = sample();
  const auto tail = b.slice(1, 2);
  EXPECT_EQ(tail.size(), 2);
  EXPECT_TRUE(torch::equal(tail.at(kBagOffsets), torch::tensor({0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(tail.at(kBagIndices), torch::tensor({29, 0, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::allclose(tail.at(kBagWeights), torch::tensor({2.0f, 1.0f, 0.1f})));
  EXPECT_TRUE(torch::equal(tail.at("label_ids"), torch::tensor({8, 9}, torch::kInt64)));
  const auto head = b.slice(0, 1);
  EXPECT_TRUE(torch::equal(head.at(kBagIndices), torch::tensor({1, 4}, torch::kInt64)));
  EXPECT_EQ(b.slice(3, 0).size(), 0);
  EXPECT_THROW((void)b.slice(2, 2), Error);
}

TEST(Batch, SelectAndGatherPickExamplesInOrder) {
  const auto b = sample();
  const int64_t ids[] = {2, 0, 2};
  for (int pass = 0; pass < 2; ++pass) {
    BatchGatherer g;
    const auto s = pass == 0 ? b.select(ids, 3) : g.gather(b, ids, 3);
    EXPECT_EQ(s.size(), 3);
    EXPECT_TRUE(torch::equal(s.at(kBagOffsets), torch::tensor({0, 3, 5}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(s.at(kBagIndices), torch::tensor({29, 0, 3, 1, 4, 29, 0, 3}, torch::kInt64)));
    EXPECT_TRUE(torch::allclose(s.at(kBagWeights), torch::tensor({2.0f, 1.0f, 0.1f, 1.0f, 0.5f, 2.0f, 1.0f, 0.1f})));
    EXPECT_TRUE(torch::equal(s.at("label_ids"), torch::tensor({9, 7, 9}, torch::kInt64)));
  }
  // A gatherer reuses its buffers: a smaller second gather still reads right.
  BatchGatherer g;
  (void)g.gather(b, ids, 3);
  const int64_t one[] = {1};
  const auto empty = g.gather(b, one, 1);
  EXPECT_EQ(empty.at(kBagIndices).numel(), 0);
  EXPECT_TRUE(torch::equal(empty.at(kBagOffsets), torch::tensor({0}, torch::kInt64)));
}

TEST(Batch, ConcatShiftsOffsetsAndPadsSequences) {
  const auto b = sample();
  const auto joined = Batch::concat({b.slice(0, 1), b.slice(1, 2)});
  EXPECT_EQ(joined.size(), 3);
  for (const auto& [name, t] : b.tensors()) EXPECT_TRUE(torch::equal(joined.at(name), t)) << name;

  Batch s1(1), s2(2);
  s1.set(kInputIds, torch::tensor({{101, 7, 102}}, torch::kInt64));
  s2.set(kInputIds, torch::tensor({{101, 102}, {101, 5}}, torch::kInt64));
  const auto seq = Batch::concat({s1, s2});
  EXPECT_TRUE(torch::equal(seq.at(kInputIds), torch::tensor({{101, 7, 102}, {101, 102, 0}, {101, 5, 0}}, torch::kInt64)));
  Batch other(1);
  other.set(kPixelValues, torch::zeros({1, 3, 2, 2}));
  EXPECT_THROW((void)Batch::concat({s1, other}), Error);
}

TEST(Batch, MissingTensorNamesWhatTheBatchHolds) {
  const auto b = sample();
  try {
    (void)b.at(kInputIds);
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("the batch has no tensor 'input_ids' (it holds: bag_indices, bag_offsets, "
                                         "bag_weights, label_ids)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(b.get(kInputIds).defined());
}

TEST(InputSpec, JsonRoundTripAndMessages) {
  InputSpec spec = bag_spec(5000);
  spec.tensors.push_back({kPixelValues, "float32", {"batch", "3", "64", "64"}, 0});
  const auto j = to_json(spec);
  EXPECT_EQ(j[3]["shape"], nlohmann::json::parse(R"(["batch", 3, 64, 64])"));
  const auto back = input_spec_from_json(j, "inputs");
  EXPECT_EQ(back.describe(), spec.describe());
  EXPECT_EQ(back.find(kBagIndices)->vocab_size, 5000);
  testing::expect_config_error([&] { (void)input_spec_from_json(nlohmann::json::parse(R"([{"name": "x"}])"), "inputs"); },
                               {"inputs[0] must be {\"name\": string, \"dtype\": string, \"shape\": [...]}"});
  testing::expect_config_error([&] { spec.merge(bag_spec(3)); }, {"two preprocessors both produce the tensor 'bag_indices'"});
}

}  // namespace
}  // namespace kiln::nn
