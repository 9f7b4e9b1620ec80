// Conv+BN folding and fusion for the cnn family: folded weights against python3-torch's
// fuse_conv_bn_eval (tests/golden/make_conv_bn_fold_golden.py), the folded fp32 model against the
// unfused eval-mode model (1e-5), int8 static and bf16 convolutions within stated tolerances, the
// multimodal family's nested image trunk and BERT text side, and the whole kiln optimize flow on a
// cnn artifact with images.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/data/image.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/nn/conv_kernel.h"
#include "kiln/optimize/flow.h"
#include "kiln/optimize/optimize.h"
#include "kiln/prep/preprocessor.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kiln_convfold_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

torch::Tensor from(const nlohmann::json& values, std::vector<int64_t> shape) {
  return torch::tensor(values.get<std::vector<float>>()).reshape(shape);
}

nn::InputSpec pixel_spec(int64_t size) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kPixelValues, "float32", {"batch", "3", std::to_string(size), std::to_string(size)}, 0});
  return s;
}

// A cnn with random BatchNorm statistics and affine parameters (a trained model's BN is not the
// identity), in eval mode.
std::shared_ptr<nn::Model> cnn(const nlohmann::json& params, int64_t size, int seed) {
  nn::ModelSpec spec;
  spec.family = "cnn";
  spec.params = params;
  torch::manual_seed(seed);
  auto m = nn::make_model(nn::resolve_spec(spec), pixel_spec(size), 4);
  torch::NoGradGuard g;
  for (auto& b : m->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  for (auto& p : m->named_parameters()) {
    if (p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos) {
      p.value().uniform_(p.key().find("weight") != std::string::npos ? 0.5 : -0.3, p.key().find("weight") != std::string::npos ? 1.5 : 0.3);
    }
  }
  m->eval();
  return m;
}

// Both layouts the tests fold: the small stem, and resnet18's 7x7/2 stem + max pool + strided
// downsamples (narrow widths), with the image side each takes.
std::vector<std::pair<nlohmann::json, int64_t>> cnn_layouts() {
  return {{{{"preset", "small"}, {"widths", {8, 16}}, {"blocks", {1, 2}}}, 16},
          {{{"preset", "resnet18"}, {"widths", {8, 8, 16, 16}}, {"blocks", {2, 2, 2, 2}}}, 32}};
}

nn::Batch pixels(int64_t n, int64_t size, int seed) {
  torch::manual_seed(seed);
  nn::Batch b(n);
  b.set(nn::kPixelValues, torch::randn({n, 3, size, size}));
  return b;
}

}  // namespace

TEST(ConvBnFold, FoldedWeightsMatchTorchFuseConvBnEval) {
  std::ifstream in(fs::path(KILN_GOLDEN_DIR) / "optimize" / "conv_bn_fold_golden.json");
  const auto golden = nlohmann::json::parse(in);
  ASSERT_EQ(golden["cases"].size(), 3u);
  for (const auto& c : golden["cases"]) {
    const std::string name = c["name"];
    const int64_t cin = c["in"], cout = c["out"], k = c["kernel"];
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, cout, k)
                                      .stride(c["stride"].get<int64_t>())
                                      .padding(c["padding"].get<int64_t>())
                                      .bias(!c["conv_bias"].is_null()));
    auto bn = torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(cout).eps(c["eps"].get<double>()));
    {
      torch::NoGradGuard g;
      conv->weight.copy_(from(c["conv_weight"], {cout, cin, k, k}));
      if (!c["conv_bias"].is_null()) conv->bias.copy_(from(c["conv_bias"], {cout}));
      bn->weight.copy_(from(c["bn_weight"], {cout}));
      bn->bias.copy_(from(c["bn_bias"], {cout}));
      bn->running_mean.copy_(from(c["bn_mean"], {cout}));
      bn->running_var.copy_(from(c["bn_var"], {cout}));
    }
    bn->eval();
    const auto [w, b] = nn::fold_conv_bn(conv, bn);
    EXPECT_LT((w - from(c["folded_weight"], {cout, cin, k, k})).abs().max().item<double>(), 1e-6) << name;
    EXPECT_LT((b - from(c["folded_bias"], {cout})).abs().max().item<double>(), 1e-6) << name;
    nn::ConvBnKernel kernel(name, conv, w, b);
    const auto x = from(c["input"], c["input_shape"].get<std::vector<int64_t>>());
    const auto want = from(c["output"], c["output_shape"].get<std::vector<int64_t>>());
    torch::InferenceMode im;
    EXPECT_LT((kernel.forward(x) - want).abs().max().item<double>(), 1e-5) << name;
    EXPECT_LT((kernel.forward_relu(x) - torch::relu(want)).abs().max().item<double>(), 1e-5) << name;
  }
}

TEST(ConvBnFold, FoldedModelEqualsTheUnfusedEvalModel) {
  for (const auto& [params, size] : cnn_layouts()) {
    auto model = cnn(params, size, 3);
    artifact::Artifact art;
    art.model = model;
    art.manifest.model.family = "cnn";
    const auto v = optimize::quantize(art, nullptr, {});
    EXPECT_EQ(v.name, "fused");
    EXPECT_EQ(v.variant.ops, (std::vector<std::string>{"conv_bn_fp32"}));
    EXPECT_EQ(v.layers.size(), model->replaceable_convs().size());
    EXPECT_EQ(v.layers.front().module, "conv1");
    EXPECT_TRUE(v.variant.details["modules"].contains("layer2.0.downsample.0"));
    const auto batch = pixels(3, size, 9);
    torch::InferenceMode im;
    const auto want = model->forward(batch);
    nn::VariantTensors t;
    for (const auto& [n, x] : v.tensors) t[n] = x;
    artifact::apply_variant(*model, v.name, v.variant, t, "test");
    EXPECT_EQ(model->kernels().size(), v.layers.size());
    const auto got = model->forward(batch);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-5) << params.dump();
    model->clear_kernels();
  }
}

TEST(ConvBnFold, Int8StaticConvolutionsStayWithinTolerance) {
  // Stated tolerance (random weights, 64 calibration images, 40 other images), as a share of the
  // fp32 logits' range: minmax (no clipping) mean |int8 - fp32| <= 1%, max <= 3% (measured 0.2%,
  // 0.6%); entropy (clips the heavy tails of random-weight activations, which shifts the pooled
  // features) max <= 20% (measured mean 6%, max 13%); both keep the argmax on >= 80% of the rows
  // (measured: all).
  auto model = cnn({{"preset", "small"}, {"widths", {8, 16}}, {"blocks", {1, 1}}}, 16, 4);
  const auto batch = pixels(40, 16, 7);
  for (const auto calibrator : {optimize::CalibratorKind::kMinMax, optimize::CalibratorKind::kEntropy}) {
    optimize::OptimizeOptions o;
    o.int8 = optimize::Int8Mode::kStatic;
    o.calibrator = calibrator;
    // quantize() encodes Examples; calibrate the conv pass directly on encoded batches instead.
    optimize::QuantizedVariant v;
    model->eval();
    optimize::make_conv_bn_pass()->run(*model, {pixels(32, 16, 1), pixels(32, 16, 2)}, o, v);
    ASSERT_EQ(v.variant.ops, (std::vector<std::string>{"conv_bn_int8_static"}));
    for (const auto& l : v.layers) {
      EXPECT_GT(l.input_threshold, 0) << l.module;
      EXPECT_GT(l.output_threshold, 0) << l.module;
    }
    torch::InferenceMode im;
    const auto want = model->forward(batch);
    nn::VariantTensors t;
    for (const auto& [n, x] : v.tensors) t[n] = x;
    artifact::apply_variant(*model, "int8", v.variant, t, "test");
    const auto got = model->forward(batch);
    model->clear_kernels();
    const double range = (want.max() - want.min()).item<double>();
    const double mean_err = (got - want).abs().mean().item<double>(), max_err = (got - want).abs().max().item<double>();
    const double agree = got.argmax(1).eq(want.argmax(1)).to(torch::kFloat32).mean().item<double>();
    const std::string name = optimize::calibrator_name(calibrator);
    std::cout << name << " int8 vs fp32 logits: range " << range << ", mean |diff| " << mean_err << ", max |diff| "
              << max_err << ", argmax agreement " << agree << "\n";
    if (calibrator == optimize::CalibratorKind::kMinMax) {
      EXPECT_LT(mean_err, 0.01 * range) << name;
      EXPECT_LT(max_err, 0.03 * range) << name;
    }
    EXPECT_LT(max_err, 0.2 * range) << name;
    EXPECT_GE(agree, 0.8) << name;
    EXPECT_GT(max_err, 0.0) << name;  // it did run in int8
  }
}

TEST(ConvBnFold, FlowOnACnnArtifactWritesAFusedInt8Variant) {
  const auto root = fresh_dir("flow");
  data::Dataset images;
  images.base_dir = root.string();
  const std::vector<std::string> labels = {"dark", "light"};
  for (int i = 0; i < 24; ++i) {
    data::Image im;
    im.width = im.height = 12;
    im.channels = 3;
    im.pixels.resize(12 * 12 * 3);
    for (std::size_t p = 0; p < im.pixels.size(); ++p) {
      im.pixels[p] = static_cast<std::uint8_t>((i % 2 ? 150 : 20) + (p * 31 + i * 17) % 90);
    }
    const std::string name = "img" + std::to_string(i) + ".png";
    std::ofstream(root / name, std::ios::binary) << data::encode_png(im);
    images.images.push_back({(root / name).string(), {}});
    images.labels.push_back(labels[i % 2]);
  }
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "image"}, {"size", 12}});
  pre->fit(images);
  nn::ModelSpec spec;
  spec.family = "cnn";
  spec.params = {{"widths", {8, 8}}, {"blocks", {1, 1}}};
  torch::manual_seed(2);
  auto model = nn::make_model(nn::resolve_spec(spec), pre->input_spec(), 2);
  model->eval();
  artifact::Manifest m;
  m.task = "image-classification";
  m.labels = labels;
  m.model = nn::resolve_spec(spec);
  const auto dir = (root / "model").string();
  artifact::save_artifact(dir, m, {pre}, *model, &images);

  optimize::FlowOptions f;
  f.optimize.int8 = optimize::Int8Mode::kStatic;
  f.optimize.max_drop = 100;  // random weights: the gate runs, its verdict is not the point here
  f.benchmark.min_seconds = 0.01;
  f.benchmark.latency_samples = 2;
  const auto out = (root / "opt").string();
  const auto r = optimize::run_optimize(dir, out, f);
  EXPECT_EQ(r.variant.name, "int8");
  ASSERT_TRUE(r.gate && r.before && r.after);
  EXPECT_HAS(r.notes.front(), "static int8 calibrates on the held-out sample (24 images)");
  EXPECT_HAS(r.notes[1], "conv_bn_int8_static");
  EXPECT_TRUE(r.report["benchmark"].contains("slower_than_fp32"));
  EXPECT_HAS(optimize::format_table(*r.before, *r.after, r.gate.get()), "verdict");
  artifact::Predictor p(out);
  EXPECT_EQ(p.variant(), "int8");
  EXPECT_EQ(p.model()->kernels().size(), model->replaceable_convs().size());
  EXPECT_EQ(p.predict_proba(images).size(0), 24);

  // Bad combinations name the fix.
  f.calibration_file = (root / "calib.txt").string();
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::run_optimize(dir, (root / "x").string(), f); }),
             "--calibration reads texts; image models calibrate on the artifact's held-out sample: drop --calibration");
  f.calibration_file.clear();
  f.val_file = (root / "val.csv").string();
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::run_optimize(dir, (root / "x").string(), f); }),
             "--val reads text files; image models are gated on the artifact's held-out sample: drop --val");
  f.val_file.clear();
  f.optimize.keep_fp32 = {"layer9.conv1"};
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::run_optimize(dir, (root / "x").string(), f); }),
             "--keep-fp32: module 'layer9.conv1' is not a Linear or Conv+BN layer of this model (its layers: conv1, "
             "layer1.0.conv1");
  EXPECT_FALSE(fs::exists(root / "x"));
  fs::remove_all(root);
}

TEST(ConvBnFold, BadVariantTensorsAreNamed) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding(1).bias(false));
  EXPECT_HAS(error_of<ArtifactError>([&] { nn::ConvBnKernel k("conv1", conv, torch::zeros({4, 3, 1, 1}), torch::zeros({4})); }),
             "variant tensor 'conv1.weight_folded' has shape [4, 3, 1, 1] but the convolution's weight is [4, 3, 3, 3]");
  EXPECT_HAS(error_of<ArtifactError>([&] { nn::ConvBnKernel k("conv1", conv, torch::zeros({4, 3, 3, 3}), torch::zeros({5})); }),
             "variant tensor 'conv1.bias_folded' must have 4 values (one per output channel)");
  EXPECT_HAS(error_of<ArtifactError>([&] {
               nn::Int8ConvKernel k("conv1", conv, torch::zeros({4, 3, 3, 3}, torch::kInt8), torch::ones({4}), torch::zeros({4}),
                                    {0.0, 0}, {1.0, 0});
             }),
             "module 'conv1': a static int8 convolution needs input and output scales > 0");
}

namespace {

// Runs `v` on `model` and returns {max |optimized - fp32| / range of the fp32 logits, argmax agreement}.
std::pair<double, double> compare_variant(nn::Model& model, const optimize::QuantizedVariant& v, const nn::Batch& batch) {
  torch::InferenceMode im;
  model.clear_kernels();
  const auto want = model.forward(batch);
  nn::VariantTensors t;
  for (const auto& [n, x] : v.tensors) t[n] = x;
  artifact::apply_variant(model, v.name, v.variant, t, "test");
  const auto got = model.forward(batch);
  model.clear_kernels();
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  const double range = (want.max() - want.min()).item<double>();
  return {(got - want).abs().max().item<double>() / range,
          got.argmax(1).eq(want.argmax(1)).to(torch::kFloat32).mean().item<double>()};
}

}  // namespace

TEST(ConvBnFold, Int8ActivationsStayQuantizedBetweenConvolutions) {
  // An int8 convolution with a fused ReLU hands its quint8 output on: the next int8 convolution (and
  // the resnet18 stem's max pool) read it as it is, and a convolution left fp32 (--keep-fp32, or
  // unfused: the gate's per-layer attribution) dequantizes it. Stated tolerance (minmax, random
  // weights): logits within 10% of the fp32 logits' range, argmax kept on >= 80% of 24 rows.
  for (const auto& [params, size] : cnn_layouts()) {
    auto model = cnn(params, size, 6);
    const std::vector<nn::Batch> calibration = {pixels(32, size, 1), pixels(32, size, 2)};
    auto int8_variant = [&](std::vector<std::string> keep) {
      optimize::OptimizeOptions o;
      o.int8 = optimize::Int8Mode::kStatic;
      o.calibrator = optimize::CalibratorKind::kMinMax;
      o.keep_fp32 = std::move(keep);
      optimize::QuantizedVariant v;
      v.name = "int8";
      model->eval();
      optimize::make_conv_bn_pass()->run(*model, calibration, o, v);
      return v;
    };
    const auto batch = pixels(24, size, 8);
    const auto v = int8_variant({});
    {
      torch::InferenceMode im;
      nn::VariantTensors t;
      for (const auto& [n, x] : v.tensors) t[n] = x;
      artifact::apply_variant(*model, v.name, v.variant, t, "test");
      const auto kernels = model->kernels();
      const auto x = torch::rand({2, 3, size, size});
      const auto stem = kernels.at("conv1")->forward_relu(x);
      EXPECT_TRUE(stem.is_quantized()) << "the ReLU convolution's output stays quint8";
      EXPECT_EQ(stem.scalar_type(), torch::kQUInt8);
      EXPECT_FALSE(kernels.at("layer1.0.conv2")->forward(stem.dequantize()).is_quantized()) << "no ReLU: fp32 out";
      model->clear_kernels();
    }
    const auto [err, agree] = compare_variant(*model, v, batch);
    std::cout << params["preset"] << " int8 (quint8 handed on) vs fp32: max |diff| / range " << err
              << ", argmax agreement " << agree << "\n";
    EXPECT_LT(err, 0.1) << params.dump();
    EXPECT_GT(err, 0.0) << "it did run in int8";
    EXPECT_GE(agree, 0.8) << params.dump();

    // The convolution after an int8 ReLU one kept fp32 (folded): it reads the quint8 output.
    const auto mixed = int8_variant({"layer1.0.conv2"});
    EXPECT_EQ(mixed.variant.details["modules"]["layer1.0.conv2"], "conv_bn_fp32");
    EXPECT_LT(compare_variant(*model, mixed, batch).first, 0.1);
    // One int8 convolution alone; the next one is the unfused fp32 module.
    optimize::QuantizedVariant one = v;
    one.variant.details["modules"] = {{"layer1.0.conv1", "conv_bn_int8_static"}};
    EXPECT_LT(compare_variant(*model, one, batch).first, 0.1);
    // The stem alone (resnet18: through the max pool into the first block and its identity shortcut).
    one.variant.details["modules"] = {{"conv1", "conv_bn_int8_static"}};
    EXPECT_LT(compare_variant(*model, one, batch).first, 0.1);
  }
}

TEST(ConvBnFold, Bf16ConvolutionsStayWithinBf16Rounding) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has neither AVX-512 BF16 nor AMX-BF16";
  // Stated tolerance: bf16 keeps 8 bits of mantissa (relative step 2^-8 = 0.4%); through 5-9
  // convolutions with random weights the logits stay within 5% of their range (measured 0.2% and 0.7%)
  // and keep the argmax on >= 90% of 40 rows.
  for (const auto& [params, size] : cnn_layouts()) {
    auto model = cnn(params, size, 5);
    artifact::Artifact art;
    art.model = model;
    art.manifest.model.family = "cnn";
    optimize::OptimizeOptions o;
    o.precision = optimize::Precision::kBf16;
    const auto v = optimize::quantize(art, nullptr, o);
    EXPECT_EQ(v.name, "bf16");
    EXPECT_EQ(v.variant.ops, (std::vector<std::string>{"conv_bn_bf16"}));
    EXPECT_EQ(v.variant.dtypes.at("conv1.weight_folded_bf16"), "bfloat16");
    const auto [err, agree] = compare_variant(*model, v, pixels(40, size, 11));
    std::cout << params["preset"] << " bf16 vs fp32: max |diff| / range " << err << ", argmax agreement " << agree << "\n";
    EXPECT_LT(err, 0.05) << params.dump();
    EXPECT_GT(err, 0.0) << "it did run in bf16";
    EXPECT_GE(agree, 0.9) << params.dump();

    // --keep-fp32 on one convolution: it folds in fp32 between bf16 ones (dtype handed over both ways).
    o.keep_fp32 = {"layer1.0.conv2"};
    const auto mixed = optimize::quantize(art, nullptr, o);
    EXPECT_EQ(mixed.variant.details["modules"]["layer1.0.conv2"], "conv_bn_fp32");
    EXPECT_EQ(mixed.variant.details["fp32_layers"].size(), 1u) << mixed.variant.details.dump();
    EXPECT_LT(compare_variant(*model, mixed, pixels(8, size, 12)).first, 0.05);

    // One bf16 convolution alone, the rest unfused fp32 modules (the accuracy gate's per-layer
    // attribution runs each layer's op alone).
    optimize::QuantizedVariant one = v;
    one.variant.details["modules"] = {{"layer1.0.conv1", "conv_bn_bf16"}};
    EXPECT_LT(compare_variant(*model, one, pixels(8, size, 13)).first, 0.05);
  }
}

TEST(ConvBnFold, MultimodalTrunkAndProjectionsAreOptimized) {
  // A multimodal model nests a cnn (the image trunk, "image.") and, with the bert text side, a BERT
  // ("text."): their layers are the outer model's under those prefixes.
  nn::InputSpec spec;
  spec.tensors.push_back({nn::kInputIds, "int64", {"batch", "sequence"}, 40});
  spec.tensors.push_back({nn::kAttentionMask, "int64", {"batch", "sequence"}, 0});
  spec.tensors.push_back({nn::kPixelValues, "float32", {"batch", "3", "16", "16"}, 0});
  nn::ModelSpec ms;
  ms.family = "multimodal";
  ms.params = {{"text_encoder", "bert"}, {"dim", 16},
               {"bert", {{"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"intermediate_size", 64}}}};
  torch::manual_seed(3);
  auto model = nn::make_model(nn::resolve_spec(ms), spec, 3);
  model->eval();
  const auto convs = model->replaceable_convs();
  ASSERT_FALSE(convs.empty());
  EXPECT_EQ(convs.front(), "image.conv1");
  EXPECT_NO_THROW((void)model->batch_norm_after("image.conv1"));
  const auto linears = model->replaceable_linears();
  for (const auto* want : {"text_proj", "image_proj", "output", "text.encoder.layer.0.intermediate.dense"}) {
    EXPECT_NE(std::find(linears.begin(), linears.end(), want), linears.end()) << want;
  }
  EXPECT_HAS(error_of<ConfigError>([&] { model->set_kernel("image.conv9", nullptr); }),
             "module 'image.conv9' is not a replaceable layer of this model (replaceable: text_proj");

  torch::manual_seed(4);
  nn::Batch batch(6);
  batch.set(nn::kInputIds, torch::randint(4, 40, {6, 7}, torch::kInt64));
  batch.set(nn::kAttentionMask, torch::ones({6, 7}, torch::kInt64));
  batch.set(nn::kPixelValues, torch::randn({6, 3, 16, 16}));
  artifact::Artifact art;
  art.model = model;
  art.manifest.model.family = "multimodal";

  // Folded fp32 (int8 dynamic with every Linear under the size threshold): equal to the unfused model.
  const auto fused = optimize::quantize(art, nullptr, {});
  EXPECT_EQ(fused.variant.ops, (std::vector<std::string>{"conv_bn_fp32"}));
  EXPECT_LT(compare_variant(*model, fused, batch).first, 1e-5);

  // int8 dynamic on every Linear (BERT's, the projections, the head) plus folded convolutions.
  optimize::OptimizeOptions o;
  o.min_int8_weights = 0;
  const auto int8 = optimize::quantize(art, nullptr, o);
  EXPECT_EQ(int8.name, "int8");
  EXPECT_EQ(int8.variant.details["modules"]["text.encoder.layer.0.intermediate.dense"], "linear_int8_dynamic");
  EXPECT_EQ(int8.variant.details["modules"]["image.layer1.0.conv1"], "conv_bn_fp32");
  EXPECT_LT(compare_variant(*model, int8, batch).first, 0.1);
  {
    nn::VariantTensors t;
    for (const auto& [n, x] : int8.tensors) t[n] = x;
    artifact::apply_variant(*model, int8.name, int8.variant, t, "test");
    EXPECT_EQ(model->kernels().size(), int8.variant.details["modules"].size());
    model->clear_kernels();
    EXPECT_TRUE(model->kernels().empty());
  }

  if (nn::cpu_has_bf16()) {
    o = {};
    o.precision = optimize::Precision::kBf16;
    const auto bf16 = optimize::quantize(art, nullptr, o);
    EXPECT_EQ(bf16.variant.details["modules"]["image.conv1"], "conv_bn_bf16");
    EXPECT_EQ(bf16.variant.details["modules"]["output"], "linear_bf16");
    EXPECT_LT(compare_variant(*model, bf16, batch).first, 0.05);
  }
}
