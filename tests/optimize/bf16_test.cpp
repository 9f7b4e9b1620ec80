// bf16 variants (kiln optimize --bf16): the kernel against the fp32 Linear, an mlp variant end to
// end, the refusal on a CPU without bf16, and the small-layer threshold of int8.
#include <gtest/gtest.h>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/optimize/optimize.h"

using namespace kiln;

namespace {

template <typename F>
std::string config_error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

// An mlp over dense-ish bags: hidden [64, 512], so hidden1 (64 x 512 = 32768 weights) is below the
// int8 threshold and output (512 x 3) too.
artifact::Artifact mlp(int64_t features) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kBagIndices, "int64", {"nnz"}, features});
  s.tensors.push_back({nn::kBagOffsets, "int64", {"batch"}, 0});
  s.tensors.push_back({nn::kBagWeights, "float32", {"nnz"}, 0});
  artifact::Artifact a;
  nn::ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"hidden", {64, 512}}, {"dropout", 0.0}};
  a.manifest.model = nn::resolve_spec(spec);
  a.manifest.labels = {"a", "b", "c"};
  torch::manual_seed(11);
  a.model = nn::make_model(a.manifest.model, s, 3);
  a.model->eval();
  return a;
}

nn::Batch bags(int64_t rows, int64_t features) {
  torch::manual_seed(12);
  nn::Batch b(rows);
  b.set(nn::kBagIndices, torch::randint(0, features, {rows * 5}, torch::kLong));
  b.set(nn::kBagOffsets, torch::arange(0, rows * 5, 5, torch::kLong));
  b.set(nn::kBagWeights, torch::rand({rows * 5}));
  return b;
}

}  // namespace

TEST(Bf16, KernelStaysWithinBf16RoundingOfFp32) {
  torch::manual_seed(1);
  torch::nn::Linear l(96, 40);
  const auto x = torch::randn({7, 96});
  nn::Bf16LinearKernel k("dense", l->weight.detach().to(torch::kBFloat16), l->bias.detach());
  torch::InferenceMode im;
  const auto want = l->forward(x), got = k.forward(x);
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  // bf16 keeps 8 significant bits: each product is off by <= 2^-8 relative, sums of 96 terms more.
  EXPECT_LT((got - want).abs().max().item<double>(), 0.02 * want.abs().max().item<double>());
  EXPECT_GT((got - want).abs().max().item<double>(), 0.0);
  EXPECT_EQ(k.weight_bytes(), 2 * 96 * 40 + 4 * 40);
  EXPECT_HAS([&] {
    try {
      nn::Bf16LinearKernel bad("dense", l->weight.detach(), l->bias.detach());
    } catch (const ArtifactError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  }(), "variant tensor 'dense.weight_bf16' must be bf16 [out, in], got Float");
}

TEST(Bf16, MlpVariantRunsEveryLinearInBf16) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX-512 BF16 / AMX-BF16 (the refusal is tested below)";
  auto a = mlp(300);
  optimize::OptimizeOptions o;
  o.precision = optimize::Precision::kBf16;
  const auto v = optimize::quantize(a, nullptr, o);
  EXPECT_EQ(v.name, "bf16");
  EXPECT_EQ(v.variant.ops, (std::vector<std::string>{"linear_bf16"}));
  EXPECT_EQ(v.variant.dtypes.at("hidden1.weight_bf16"), "bfloat16");
  EXPECT_EQ(v.variant.details["precision"], "bf16");
  const auto batch = bags(20, 300);
  torch::InferenceMode im;
  const auto want = a.model->forward(batch);
  nn::VariantTensors t;
  for (const auto& [n, x] : v.tensors) t[n] = x;
  artifact::apply_variant(*a.model, v.name, v.variant, t, "test");
  EXPECT_EQ(a.model->kernels().size(), 2u);
  const auto got = a.model->forward(batch);
  EXPECT_LT((got - want).abs().max().item<double>(), 0.02 * want.abs().max().item<double>() + 1e-3);
  EXPECT_TRUE(got.argmax(1).equal(want.argmax(1)));
}

TEST(Bf16, RefusedOnACpuWithoutBf16) {
  core::CpuInfo plain;
  plain.model_name = "Test CPU";
  plain.avx512f = plain.os_avx512 = true;
  EXPECT_HAS(config_error_of([&] { optimize::require_bf16(plain); }),
             "--bf16 needs a CPU with AVX-512 BF16 or AMX-BF16 instructions (cpuinfo flags avx512_bf16, amx_bf16) and "
             "this one (Test CPU) has neither; use --int8 dynamic or --int8 static instead");
  plain.amx_bf16 = true;  // the instructions without the OS saving AMX state: unusable
  EXPECT_HAS(config_error_of([&] { optimize::require_bf16(plain); }), "has neither");
  plain.os_amx = true;
  EXPECT_NO_THROW(optimize::require_bf16(plain));
  optimize::OptimizeOptions o;
  o.precision = optimize::Precision::kBf16;
  o.int8 = optimize::Int8Mode::kStatic;
  EXPECT_HAS(config_error_of([&] { optimize::validate(o); }),
             "--bf16 and --int8 static are two precisions for the same layers: choose one");
}

TEST(Int8Threshold, SmallLayersStayFp32AndSayWhy) {
  auto a = mlp(300);
  optimize::OptimizeOptions o;
  o.min_int8_weights = 32768;  // hidden1 (64 x 512) exactly reaches it; output (512 x 3) does not
  const auto v = optimize::quantize(a, nullptr, o);
  ASSERT_EQ(v.layers.size(), 2u);
  EXPECT_EQ(v.layers[0].op, "linear_int8_dynamic");
  EXPECT_EQ(v.layers[1].op, "fp32");
  EXPECT_EQ(v.layers[1].reason,
            "small: 512 x 3 = 1536 weights < --min-int8-weights 32768 (int8 is slower than fp32 there)");
  EXPECT_EQ(v.variant.details["fp32_layers"][0]["module"], "output");
  o.min_int8_weights = optimize::kMinInt8Weights;
  EXPECT_HAS(config_error_of([&] { (void)optimize::quantize(a, nullptr, o); }),
             "no layer of this mlp model is left to optimize (hidden1: small: 64 x 512 = 32768 weights < "
             "--min-int8-weights 131072");
  o.min_int8_weights = -1;
  EXPECT_HAS(config_error_of([&] { optimize::validate(o); }),
             "optimize.min_int8_weights (--min-int8-weights) must be >= 0, got -1");
}
