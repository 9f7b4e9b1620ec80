// The training fast paths must reproduce LibTorch's results: dropout draws the very same masks,
// and the fused EmbeddingBag backward gives torch's row-sparse gradient, coalesced; the int8
// kernels' quint8 quantize/dequantize give LibTorch's integers.
#include <gtest/gtest.h>

#include "kiln/nn/dropout.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/nn/sparse_embed.h"
#include "nn_test_util.h"

namespace kiln::nn {
namespace {

TEST(FastDropout, SameMasksAndGeneratorStateAsTorch) {
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (double p : {0.1, 0.3, 0.5}) {
      const auto x = torch::randn({37, 129}, dtype);  // not a multiple of the MT19937 block
      torch::manual_seed(17);
      (void)torch::rand({700});  // the engine mid-block
      const auto want = torch::dropout(x, p, true);
      const auto want_next = torch::rand({5});
      torch::manual_seed(17);
      (void)torch::rand({700});
      const auto got = nn::dropout(x, p, true);
      const auto got_next = torch::rand({5});
      EXPECT_TRUE(torch::equal(got, want)) << "p " << p;
      EXPECT_TRUE(torch::equal(got_next, want_next)) << "generator state after dropout differs, p " << p;
    }
  }
}

TEST(FastDropout, EvalAndZeroProbabilityPassThrough) {
  const auto x = torch::randn({4, 5});
  EXPECT_TRUE(torch::equal(nn::dropout(x, 0.3, false), x));
  EXPECT_TRUE(torch::equal(nn::dropout(x, 0.0, true), x));
}

TEST(FastDropout, GradientIsTheMask) {
  auto x = torch::randn({8, 16}, torch::requires_grad());
  torch::manual_seed(3);
  auto y = nn::dropout(x, 0.25, true);
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), (y.detach() != 0).to(torch::kFloat32) / 0.75f));
}

TEST(FusedEmbeddingBackward, EqualsTorchSparseGradient) {
  for (bool weighted : {true, false}) {
    torch::manual_seed(5);
    auto fused = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(50, 6).mode(torch::kSum).sparse(true));
    auto plain = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(50, 6).mode(torch::kSum).sparse(true));
    plain->weight.set_data(fused->weight.detach().clone());
    // Rows repeat within and across bags, bag 2 is empty, rows come unsorted.
    SparseBatch batch{torch::tensor({7, 3, 7, 49, 3, 0, 12, 7}, torch::kInt64), torch::tensor({0, 3, 5, 5}, torch::kInt64),
                      weighted ? torch::rand({8}) : torch::Tensor()};
    const auto up = torch::randn({4, 6});
    (embed_sparse(fused, batch, Pooling::kSum) * up).sum().backward();
    const auto w = batch.weights;
    (plain->forward(batch.indices, batch.offsets, w) * up).sum().backward();
    const auto g = fused->weight.grad();
    ASSERT_TRUE(g.is_sparse());
    EXPECT_TRUE(torch::equal(g._indices(), torch::tensor({{0, 3, 7, 12, 49}}, torch::kInt64)));
    EXPECT_LE((g.to_dense() - plain->weight.grad().to_dense()).abs().max().item<float>(), 1e-6f);
  }
}

TEST(FusedEmbeddingBackward, MeanPoolingKeepsItsGradient) {
  torch::manual_seed(6);
  auto fused = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(20, 4).mode(torch::kSum).sparse(true));
  auto dense = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(20, 4).mode(torch::kSum));
  dense->weight.set_data(fused->weight.detach().clone());
  SparseBatch batch{torch::tensor({1, 2, 2, 19}, torch::kInt64), torch::tensor({0, 2}, torch::kInt64),
                    torch::tensor({0.5f, 1.0f, 2.0f, 1.0f})};
  embed_sparse(fused, batch, Pooling::kMean).pow(2).sum().backward();
  embed_sparse(dense, batch, Pooling::kMean).pow(2).sum().backward();
  EXPECT_LE((fused->weight.grad().to_dense() - dense->weight.grad()).abs().max().item<float>(), 1e-6f);
}

}  // namespace
}  // namespace kiln::nn

namespace kiln::nn {
namespace {

// Inference over many bags that share few rows (Kernel SHAP's coalitions of one text) pools with
// one dense product: the same sums as LibTorch's embedding_bag up to rounding; other batches
// (few bags, many distinct rows, gradients on) keep the gather.
TEST(DenseBagSum, EqualsTheGatherOverFewSharedRows) {
  torch::manual_seed(3);
  torch::nn::EmbeddingBag bag(torch::nn::EmbeddingBagOptions(5000, 64).mode(torch::kSum));
  auto make = [](int64_t rows, int64_t per_row, int64_t distinct) {
    const auto pool = torch::randperm(5000).slice(0, 0, distinct);
    const auto pick = torch::randint(distinct, {rows * per_row});
    return SparseBatch{pool.index_select(0, pick), torch::arange(rows) * per_row, torch::rand({rows * per_row})};
  };
  const auto gather = [&](const SparseBatch& b) {
    return std::get<0>(torch::embedding_bag(bag->weight, b.indices, b.offsets, false, 0, false, b.weights));
  };
  const SparseBatch shared = make(512, 40, 100);  // the dense product applies
  const SparseBatch spread = make(8, 40, 5000);    // too few bags: the gather
  for (const auto* b : {&shared, &spread}) {
    torch::InferenceMode guard;
    const auto got = embed_sparse(bag, *b, Pooling::kSum);
    const auto want = gather(*b);
    EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max().item<float>();
  }
  // Unweighted bags count each entry once.
  SparseBatch ones = shared;
  ones.weights = torch::Tensor();
  torch::InferenceMode guard;
  const auto want = std::get<0>(torch::embedding_bag(bag->weight, ones.indices, ones.offsets));
  EXPECT_TRUE(torch::allclose(embed_sparse(bag, ones, Pooling::kSum), want, 1e-5, 1e-5));
}

// The linear family's probabilities skip LibTorch's ops (one pass per row): they equal softmax of
// the model's forward divided by the temperature, weighted or not, empty rows included; a bad index
// still reaches the forward pass and its error.
TEST(FastLinearProba, EqualsTheForwardsSoftmax) {
  torch::manual_seed(11);
  ModelSpec spec;
  spec.family = "linear";
  auto model = make_model(spec, 40, 5);
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["bias"].uniform_(-1, 1);
  }
  model->eval();
  const std::vector<testing::Row> rows = {{{1, 0.5f}, {7, 1.5f}, {39, 0.25f}}, {}, {{3, 2.0f}, {3, 1.0f}}, {{0, 1.0f}}};
  for (bool weighted : {true, false}) {
    const Batch b = testing::make_batch(rows, weighted);
    for (double t : {1.0, 0.37, 2.5}) {
      torch::Tensor want;
      {
        torch::InferenceMode guard;
        want = torch::softmax(model->forward(b) / t, 1);
      }
      const auto got = predict_proba(*model, b, 256, torch::kCPU, t);
      EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-7)) << "weighted " << weighted << ", temperature " << t << "\n"
                                                          << got << "\n" << want;
    }
  }
  const Batch bad = testing::make_batch({{{40, 1.0f}}});
  EXPECT_ANY_THROW((void)predict_proba(*model, bad, 256, torch::kCPU, 1.0));
}

}  // namespace
}  // namespace kiln::nn

TEST(FastQuantize, EqualsLibTorchsQuantizePerTensor) {
  // Kiln's vectorized quint8 quantize/dequantize against ATen's (scalar in Debian's build): the same
  // integers, ties rounded half to even, out-of-range values clamped, each memory format kept.
  torch::manual_seed(5);
  const double scale = 0.05;
  auto ties = (torch::arange(-300, 300).to(torch::kFloat32) + 0.5f) * static_cast<float>(scale);
  for (const int64_t zp : {int64_t{0}, int64_t{128}}) {
    std::vector<torch::Tensor> inputs = {
        torch::randn({7, 1000}) * 4,                                                         // contiguous
        (torch::randn({3, 16, 9, 11}) * 3).contiguous(at::MemoryFormat::ChannelsLast),       // NHWC
        torch::randn({40, 30}).t() * 2,                                                      // strided
        ties,                                                                                // exact halves
        torch::tensor({-1e6f, 1e6f, 0.0f, -0.0f, 12.75f, 12.7f, -6.4f, -6.45f}),             // extremes
    };
    for (const auto& x : inputs) {
      const auto want = at::quantize_per_tensor(x, scale, zp, torch::kQUInt8);
      const auto got = kiln::nn::quantize_quint8(x, scale, zp);
      ASSERT_TRUE(got.is_quantized());
      EXPECT_EQ(got.q_scale(), scale);
      EXPECT_EQ(got.q_zero_point(), zp);
      EXPECT_TRUE(torch::equal(got.int_repr().contiguous(), want.int_repr().contiguous())) << x.sizes() << " zp " << zp;
      if (x.dim() == 4) {
        EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
      }
      const auto back = kiln::nn::dequantize_quint8(got);
      EXPECT_EQ(back.scalar_type(), torch::kFloat32);
      EXPECT_LT((back - want.dequantize()).abs().max().item<double>(), 1e-5) << x.sizes();
      if (x.dim() == 4) {
        EXPECT_TRUE(back.is_contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
  }
  // Beyond int64 after scaling ATen's cast is undefined (it gave 0 for 1e30); Kiln saturates.
  const auto huge = kiln::nn::quantize_quint8(torch::tensor({-1e30f, 1e30f}), scale, 128).int_repr();
  EXPECT_EQ(huge[0].item<int>(), 0);
  EXPECT_EQ(huge[1].item<int>(), 255);
  // Other quantized tensors go to LibTorch's dequantize.
  const auto qi8 = at::quantize_per_tensor(torch::randn({5}), 0.1, 0, torch::kQInt8);
  EXPECT_TRUE(torch::equal(kiln::nn::dequantize_quint8(qi8), qi8.dequantize()));
}
