#include "kiln/optimize/optimize.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kiln/artifact/predictor.h"
#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/conv_kernel.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/optimize/benchmark.h"
#include "kiln/optimize/calibrator.h"

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
  fs::path p = fs::temp_directory_path() / ("kiln_optimize_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Three topics, 40 rows each: an mlp learns nothing here (random weights), but its argmax is stable
// enough to compare the int8 variant's predictions with the fp32 ones.
data::Dataset topics(int per_class, int seed) {
  const std::vector<std::vector<std::string>> words = {
      {"goal", "match", "team", "score", "league", "coach"},
      {"recipe", "oven", "salt", "butter", "flour", "bake"},
      {"stock", "market", "bank", "rate", "loan", "bond"}};
  const std::vector<std::string> labels = {"sports", "cooking", "finance"};
  data::Dataset ds;
  uint32_t s = static_cast<uint32_t>(seed);
  auto next = [&s] { return (s = s * 1664525u + 1013904223u) >> 8; };
  for (int i = 0; i < per_class * 3; ++i) {
    const int c = i % 3;
    std::string text;
    for (int k = 0; k < 5; ++k) text += (k ? " " : "") + words[c][next() % 6];
    ds.texts.push_back(text);
    ds.labels.push_back(labels[c]);
  }
  return ds;
}

// An mlp artifact (hidden [32, 32], weights fitted by a few plain SGD steps so its held-out F1 is
// meaningful) saved under `root`/model with a held-out sample.
fs::path save_mlp(const fs::path& root) {
  auto train = topics(40, 1);
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "tfidf"}});
  pre->fit(train);
  torch::manual_seed(3);
  nn::ModelSpec spec;
  spec.family = "mlp";
  spec.params = {{"hidden", {32, 32}}, {"dropout", 0.0}};
  auto model = nn::make_model(spec, pre->input_spec(), 3);
  const std::vector<std::string> labels = {"cooking", "finance", "sports"};
  std::vector<int64_t> y;
  for (const auto& l : train.labels) y.push_back(std::find(labels.begin(), labels.end(), l) - labels.begin());
  const auto batch = pre->encode(train);
  const auto target = torch::tensor(y);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.5));
  model->train();
  for (int step = 0; step < 60; ++step) {
    sgd.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(batch), target);
    loss.backward();
    sgd.step();
  }
  model->eval();
  artifact::Manifest m;
  m.labels = labels;
  m.model = nn::resolve_spec(spec);
  const fs::path dir = root / "model";
  const auto heldout = topics(20, 7);
  artifact::save_artifact(dir.string(), m, {pre}, *model, &heldout);
  return dir;
}

// The test mlp's layers are far below the default --min-int8-weights: quantize them anyway.
optimize::OptimizeOptions every_layer() {
  optimize::OptimizeOptions o;
  o.min_int8_weights = 0;
  return o;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

void write_json(const fs::path& p, const nlohmann::json& j) { std::ofstream(p) << j.dump(2); }

}  // namespace

// ---- calibrators -------------------------------------------------------------------------------

TEST(Calibrator, EntropyAndPercentileMatchTheNumpyReference) {
  const auto golden = read_json(fs::path(KILN_GOLDEN_DIR) / "optimize" / "calibration_golden.json");
  ASSERT_GE(golden["cases"].size(), 5u);
  for (const auto& c : golden["cases"]) {
    const auto bins = c["bins"].get<std::vector<double>>();
    const double width = c["bin_width"].get<double>();
    ASSERT_EQ(static_cast<int64_t>(bins.size()), optimize::kHistogramBins);
    const std::string name = c["name"];
    EXPECT_NEAR(optimize::entropy_threshold(bins, width), c["entropy"].get<double>(), 1e-9 * width) << name;
    EXPECT_NEAR(optimize::percentile_threshold(bins, width, 99.99), c["percentile_99_99"].get<double>(), 1e-9 * width) << name;
    EXPECT_NEAR(optimize::percentile_threshold(bins, width, 99.0), c["percentile_99"].get<double>(), 1e-9 * width) << name;
  }
}

TEST(Calibrator, EntropyClipsAHeavyTailBelowTheMax) {
  // A narrow bulk and a few far outliers: KL keeps the bulk's resolution.
  std::vector<double> bins(2048, 0.0);
  for (int k = 0; k < 200; ++k) bins[k] = 1000.0 - 4.0 * k;
  bins[2047] = 3;
  const double t = optimize::entropy_threshold(bins, 1.0);
  EXPECT_LT(t, 400.0);
  EXPECT_GE(t, 128.5);
}

TEST(Calibrator, ObserverThresholdsFollowTheData) {
  optimize::RangeObserver o;
  auto x = torch::linspace(-4, 4, 10001);
  o.observe_max(x);
  o.observe_histogram(x);
  EXPECT_DOUBLE_EQ(o.threshold(optimize::CalibratorKind::kMinMax, 99.99), 4.0);
  EXPECT_NEAR(o.threshold(optimize::CalibratorKind::kPercentile, 50.0), 2.0, 4.0 / 2048 * 2);
  const double e = o.threshold(optimize::CalibratorKind::kEntropy, 99.99);
  EXPECT_GT(e, 0.0);
  EXPECT_LE(e, 4.0 + 4.0 / 2048);
}

TEST(Calibrator, BadInputsAreNamed) {
  EXPECT_HAS(error_of<ConfigError>([] { (void)optimize::parse_calibrator("kl"); }),
             "--calibrator must be entropy, percentile or minmax, got 'kl'");
  EXPECT_HAS(error_of<ConfigError>([] { (void)optimize::entropy_threshold(std::vector<double>(100, 1.0), 1.0); }),
             "needs at least 128 histogram bins, got 100");
  EXPECT_HAS(error_of<ConfigError>([] { (void)optimize::percentile_threshold({1, 2}, 1.0, 0); }),
             "percentile must be in (0, 100]");
  EXPECT_HAS(error_of<ConfigError>([] { (void)optimize::parse_int8_mode("int4"); }),
             "--int8 must be dynamic or static, got 'int4'");
  optimize::OptimizeOptions o;
  o.calibration_size = 0;
  EXPECT_HAS(error_of<ConfigError>([&] { optimize::validate(o); }), "optimize.calibration_size (--calibration-size) must be >= 1, got 0");
  o = {};
  o.max_drop = -1;
  EXPECT_HAS(error_of<ConfigError>([&] { optimize::validate(o); }), "optimize.max_drop (--max-drop) must be >= 0");
  o = {};
  o.percentile = 101;
  EXPECT_HAS(error_of<ConfigError>([&] { optimize::validate(o); }), "optimize.percentile (--percentile) must be in (0, 100]");
  o = {};
  o.variant_name = "fp32";
  EXPECT_HAS(error_of<ConfigError>([&] { optimize::validate(o); }), "optimize.variant_name must be");
}

// ---- int8 kernels ------------------------------------------------------------------------------

TEST(Int8Linear, PerChannelWeightsRoundTripWithinHalfAStep) {
  torch::manual_seed(0);
  auto w = torch::randn({8, 16});
  w[3].zero_();
  auto [q, s] = nn::quantize_weight_per_channel(w);
  EXPECT_EQ(q.scalar_type(), torch::kInt8);
  EXPECT_FLOAT_EQ(s[3].item<float>(), 1.0f);
  auto back = q.to(torch::kFloat32) * s.unsqueeze(1);
  EXPECT_LE(((back - w).abs() - s.unsqueeze(1) / 2).max().item<float>(), 1e-6);
  EXPECT_EQ(q.abs().max().item<int>(), 127);
}

TEST(Int8Linear, ActivationsKeepSevenBitsOnX86EnginesWithoutVnni) {
  core::CpuInfo avx2;
  avx2.avx = avx2.avx2 = avx2.fma = avx2.os_avx = true;
  EXPECT_TRUE(nn::int8_needs_reduced_range("onednn", avx2));
  EXPECT_TRUE(nn::int8_needs_reduced_range("fbgemm", avx2));
  EXPECT_FALSE(nn::int8_needs_reduced_range("qnnpack", avx2)) << "qnnpack sums in 32 bits";
  core::CpuInfo avx_vnni = avx2;
  avx_vnni.avx_vnni = true;
  EXPECT_FALSE(nn::int8_needs_reduced_range("onednn", avx_vnni));
  core::CpuInfo avx512_vnni = avx2;
  avx512_vnni.avx512f = avx512_vnni.avx512_vnni = true;
  EXPECT_TRUE(nn::int8_needs_reduced_range("onednn", avx512_vnni)) << "AVX-512 state not saved by the OS";
  avx512_vnni.os_avx512 = true;
  EXPECT_FALSE(nn::int8_needs_reduced_range("onednn", avx512_vnni));
  // The 7-bit ranges cover the same values: [-128, 126] steps of the 8-bit scale, and [0, threshold].
  const auto signed7 = nn::seven_bit_qparams(nn::activation_qparams(2.54, false));
  EXPECT_DOUBLE_EQ(signed7.scale, 0.04);
  EXPECT_EQ(signed7.zero_point, 64);
  const auto relu7 = nn::seven_bit_qparams(nn::activation_qparams(2.54, true));
  EXPECT_DOUBLE_EQ(relu7.scale * 127, 2.54);
  EXPECT_EQ(relu7.zero_point, 0);
}

// Activations spanning the whole range against weights spanning theirs: without VNNI, 8-bit
// activations saturate onednn's and fbgemm's 16-bit pair sums (errors near 7% of the range here).
TEST(Int8Linear, DynamicAndStaticStayCloseToFp32) {
  ASSERT_FALSE(nn::select_quantized_engine().empty()) << "this LibTorch has no quantized engine";
  torch::manual_seed(1);
  auto w = torch::randn({24, 40}) * 0.2;
  auto b = torch::randn({24});
  auto x = torch::randn({16, 40});
  auto ref = torch::nn::functional::linear(x, w, b);
  auto [q, s] = nn::quantize_weight_per_channel(w);
  nn::Int8LinearKernel dyn("layer", q, s, b);
  EXPECT_EQ(dyn.op(), "linear_int8_dynamic");
  const double range = ref.abs().max().item<double>();
  EXPECT_LT((dyn.forward(x) - ref).abs().max().item<double>(), 0.03 * range);
  nn::Int8LinearKernel st("layer", q, s, b, x.abs().max().item<double>() / 127, range / 127);
  EXPECT_EQ(st.op(), "linear_int8_static");
  EXPECT_LT((st.forward(x) - ref).abs().max().item<double>(), 0.05 * range);
  // A 3-D input (batch, sequence, features), as BERT's layers give.
  EXPECT_EQ(dyn.forward(x.view({4, 4, 40})).sizes(), (std::vector<int64_t>{4, 4, 24}));
}

TEST(Int8Linear, MismatchedTensorsAreNamed) {
  auto q = torch::zeros({4, 3}, torch::kInt8);
  EXPECT_HAS(error_of<ArtifactError>([&] { nn::Int8LinearKernel k("hidden1", q, torch::ones({3}), torch::zeros({4})); }),
             "variant tensor 'hidden1.weight_scale' must have 4 values");
  EXPECT_HAS(error_of<ArtifactError>([&] { nn::Int8LinearKernel k("hidden1", q.to(torch::kFloat32), torch::ones({4}), {}); }),
             "variant tensor 'hidden1.weight_int8' must be int8 [out, in]");
}

TEST(Int8Linear, BertRunsEveryLinearInInt8) {
  nn::BertOptions o;
  nn::apply_bert_preset("tiny", o.config);
  o.config.vocab_size = 64;
  o.config.num_hidden_layers = 1;
  o.config.max_position_embeddings = 16;
  o.num_classes = 3;
  torch::manual_seed(2);
  auto bert = std::make_shared<nn::BertModel>(o);  // named_modules() needs shared ownership
  auto& model = *bert;
  model.eval();
  const auto names = model.replaceable_linears();
  ASSERT_EQ(names.size(), 8u);  // q, k, v, attention out, intermediate, output, pooler, classifier
  EXPECT_EQ(names.front(), "encoder.layer.0.attention.self.query");
  nn::Batch batch(3);
  batch.set(nn::kInputIds, torch::randint(1, 64, {3, 10}));
  batch.set(nn::kAttentionMask, torch::ones({3, 10}, torch::kLong));
  torch::InferenceMode guard;
  const auto ref = model.forward(batch);
  for (const auto& n : names) {
    torch::nn::Linear l(std::dynamic_pointer_cast<torch::nn::LinearImpl>(model.named_modules()[n]));
    auto [q, s] = nn::quantize_weight_per_channel(l->weight);
    model.set_kernel(n, std::make_shared<nn::Int8LinearKernel>(n, q, s, l->bias));
  }
  const auto out = model.forward(batch);
  EXPECT_LT((out - ref).abs().max().item<double>(), 0.05 * ref.abs().max().item<double>() + 1e-3);
  EXPECT_FALSE(torch::equal(out, ref));  // the kernels ran
  model.clear_kernels();
  EXPECT_TRUE(torch::allclose(model.forward(batch), ref));
  EXPECT_HAS(error_of<ConfigError>([&] { model.set_kernel("embeddings.word_embeddings", nullptr); }),
             "module 'embeddings.word_embeddings' is not a replaceable layer of this model (replaceable: encoder.layer.0");
}

// ---- kiln optimize on an artifact --------------------------------------------------------------

TEST(Optimize, DynamicVariantIsTheDefaultAndPassesTheGate) {
  const auto root = fresh_dir("dynamic");
  const auto dir = save_mlp(root);
  auto art = artifact::load_artifact(dir.string());
  optimize::OptimizeOptions o = every_layer();
  const auto v = optimize::quantize(art, nullptr, o);
  EXPECT_EQ(v.variant.ops, (std::vector<std::string>{"linear_int8_dynamic"}));
  ASSERT_EQ(v.layers.size(), 2u);  // hidden1, output
  EXPECT_EQ(v.layers[0].module, "hidden1");
  EXPECT_EQ(v.layers[1].module, "output");
  EXPECT_EQ(v.variant.dtypes.at("hidden1.weight_int8"), "int8");

  artifact::PredictorOptions fp;
  fp.variant = "fp32";
  artifact::Predictor fp32(dir.string(), fp);
  const auto val = artifact::load_heldout(dir.string());
  ASSERT_EQ(val.size(), 60u);
  const auto gate = optimize::check_accuracy(fp32, v, val, "heldout", o);
  EXPECT_GT(gate.fp32.macro_f1, 0.9);  // the SGD steps learned the topics
  EXPECT_TRUE(gate.passed) << gate.drop_points;
  EXPECT_TRUE(fp32.model()->kernels().empty());

  const auto out = root / "opt";
  optimize::save_optimized(dir.string(), out.string(), v, {{"accuracy", {{"passed", true}}}});
  EXPECT_TRUE(fs::exists(out / "variants" / "int8.safetensors"));
  EXPECT_TRUE(fs::exists(out / "heldout.jsonl"));
  const auto j = read_json(out / "kiln.json");
  EXPECT_EQ(j["default_variant"], "int8");
  EXPECT_EQ(j["variants"]["int8"]["details"]["modules"]["hidden1"], "linear_int8_dynamic");

  artifact::Predictor int8(out.string());
  EXPECT_EQ(int8.variant(), "int8");
  EXPECT_EQ(int8.model()->kernels().size(), 2u);
  artifact::Predictor back(out.string(), fp);
  EXPECT_EQ(back.variant(), "fp32");
  const auto p32 = fp32.predict_proba(val);
  EXPECT_TRUE(torch::equal(back.predict_proba(val), p32));
  const auto p8 = int8.predict_proba(val);
  EXPECT_LT((p8 - p32).abs().max().item<double>(), 0.05);
  EXPECT_FALSE(torch::equal(p8, p32));

  // The benchmark measures both (no timing asserts: the machine is shared).
  optimize::BenchmarkOptions bo;
  bo.min_seconds = 0.01;
  bo.latency_samples = 3;
  const auto m = optimize::measure(int8, int8.encode(val), bo);
  EXPECT_EQ(m.variant, "int8");
  EXPECT_GT(m.examples_per_second, 0);
  EXPECT_LT(m.weight_bytes, optimize::measure(fp32, fp32.encode(val), bo).weight_bytes);
  fs::remove_all(root);
}

TEST(Optimize, StaticCalibratorsAllProduceWorkingVariants) {
  const auto root = fresh_dir("static");
  const auto dir = save_mlp(root);
  const auto calib = topics(30, 11);
  artifact::PredictorOptions fp;
  fp.variant = "fp32";
  artifact::Predictor fp32(dir.string(), fp);
  const auto val = artifact::load_heldout(dir.string());
  for (const char* c : {"entropy", "percentile", "minmax"}) {
    auto art = artifact::load_artifact(dir.string());
    optimize::OptimizeOptions o = every_layer();
    o.int8 = optimize::Int8Mode::kStatic;
    o.calibrator = optimize::parse_calibrator(c);
    o.calibration_size = 60;
    const auto v = optimize::quantize(art, &calib, o);
    EXPECT_EQ(v.variant.ops, (std::vector<std::string>{"linear_int8_static"})) << c;
    EXPECT_EQ(v.variant.details["calibrator"], c);
    EXPECT_EQ(v.variant.details["calibration_examples"], 60);
    for (const auto& l : v.layers) {
      EXPECT_GT(l.input_threshold, 0) << c << " " << l.module;
      EXPECT_GT(l.output_threshold, 0) << c << " " << l.module;
    }
    EXPECT_TRUE(art.model->kernels().empty());  // the observers are gone
    const auto gate = optimize::check_accuracy(fp32, v, val, "heldout", o);
    EXPECT_TRUE(gate.passed) << c << " drop " << gate.drop_points;
  }
  auto art = artifact::load_artifact(dir.string());
  optimize::OptimizeOptions o = every_layer();
  o.int8 = optimize::Int8Mode::kStatic;
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::quantize(art, nullptr, o); }),
             "--int8 static needs calibration examples: pass --calibration FILE");
  fs::remove_all(root);
}

TEST(Optimize, KeepFp32AndItsErrors) {
  const auto root = fresh_dir("keep");
  const auto dir = save_mlp(root);
  auto art = artifact::load_artifact(dir.string());
  optimize::OptimizeOptions o = every_layer();
  o.keep_fp32 = {"output"};
  const auto v = optimize::quantize(art, nullptr, o);
  EXPECT_EQ(v.layers[1].op, "fp32");
  EXPECT_EQ(v.layers[1].reason, "--keep-fp32");
  EXPECT_EQ(v.variant.details["fp32_layers"][0]["module"], "output");
  EXPECT_FALSE(v.variant.details["modules"].contains("output"));
  o.keep_fp32 = {"hidden9"};
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::quantize(art, nullptr, o); }),
             "--keep-fp32: module 'hidden9' is not a Linear or Conv+BN layer of this model (its layers: hidden1, output)");
  o.keep_fp32 = {"hidden1", "output"};
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::quantize(art, nullptr, o); }),
             "no layer of this mlp model is left to optimize (hidden1: --keep-fp32; output: --keep-fp32)");
  fs::remove_all(root);
}

TEST(Optimize, LoaderRefusesAVariantItCannotRun) {
  const auto root = fresh_dir("refuse");
  const auto dir = save_mlp(root);
  auto art = artifact::load_artifact(dir.string());
  const auto v = optimize::quantize(art, nullptr, every_layer());
  const auto out = root / "opt";
  optimize::save_optimized(dir.string(), out.string(), v);
  auto j = read_json(out / "kiln.json");
  // An op from a newer Kiln.
  auto newer = j;
  newer["variants"]["int8"]["ops"] = {"linear_int4_dynamic"};
  newer["variants"]["int8"]["details"]["modules"]["hidden1"] = "linear_int4_dynamic";
  write_json(out / "kiln.json", newer);
  EXPECT_HAS(error_of<ArtifactError>([&] { artifact::Predictor p(out.string()); }),
             "needs the op 'linear_int4_dynamic', which this Kiln does not know; upgrade kiln or use the fp32 weights (--variant fp32)");
  // ... and --variant fp32 still runs it.
  artifact::PredictorOptions fp;
  fp.variant = "fp32";
  EXPECT_EQ(artifact::Predictor(out.string(), fp).variant(), "fp32");
  // A module the model does not have.
  auto other = j;
  other["variants"]["int8"]["details"]["modules"]["hidden7"] = "linear_int8_dynamic";
  write_json(out / "kiln.json", other);
  EXPECT_HAS(error_of<ArtifactError>([&] { artifact::Predictor p(out.string()); }),
             "replaces module 'hidden7', which the model does not have");
  // The variant file gone.
  write_json(out / "kiln.json", j);
  fs::remove(out / "variants" / "int8.safetensors");
  EXPECT_HAS(error_of<ArtifactError>([&] { artifact::Predictor p(out.string()); }),
             "int8.safetensors: missing; kiln.json lists variant 'int8' here");
  // A default variant that is not listed.
  auto dangling = j;
  dangling["default_variant"] = "int4";
  write_json(out / "kiln.json", dangling);
  EXPECT_HAS(error_of<ArtifactError>([&] { (void)artifact::load_artifact(out.string()); }),
             "\"default_variant\" is 'int4' but \"variants\" has no such entry");
  // Writing over the input is refused.
  EXPECT_HAS(error_of<ConfigError>([&] { optimize::save_optimized(dir.string(), dir.string(), v); }),
             "is the input artifact itself");
  fs::remove_all(root);
}

TEST(Optimize, LinearFamilyHasNothingToQuantize) {
  const auto root = fresh_dir("linear");
  auto train = topics(10, 1);
  std::shared_ptr<prep::Preprocessor> pre = prep::make_preprocessor({{"type", "tfidf"}});
  pre->fit(train);
  nn::ModelSpec spec;
  spec.family = "linear";
  auto model = nn::make_model(spec, pre->input_spec(), 3);
  artifact::Manifest m;
  m.labels = {"cooking", "finance", "sports"};
  m.model = nn::resolve_spec(spec);
  artifact::save_artifact((root / "m").string(), m, {pre}, *model);
  auto art = artifact::load_artifact((root / "m").string());
  EXPECT_HAS(error_of<ConfigError>([&] { (void)optimize::quantize(art, nullptr, every_layer()); }),
             "no layer of this linear model is left to optimize (int8 and bf16 cover the Linear layers of mlp, bert and "
             "multimodal, BatchNorm folding the convolutions of cnn and multimodal); nothing would be faster than fp32");
  fs::remove_all(root);
}

TEST(Optimize, GateFailsAndNamesTheLayerThatCostsTheMost) {
  const auto root = fresh_dir("gate");
  const auto dir = save_mlp(root);
  auto art = artifact::load_artifact(dir.string());
  optimize::OptimizeOptions o = every_layer();
  auto v = optimize::quantize(art, nullptr, o);
  // Break the output layer (its class rows reversed): its int8 result swaps two classes.
  for (auto& [name, t] : v.tensors) {
    if (name == "output.weight_int8") t = t.flip({0}).contiguous();
  }
  artifact::PredictorOptions fp;
  fp.variant = "fp32";
  artifact::Predictor fp32(dir.string(), fp);
  const auto gate = optimize::check_accuracy(fp32, v, artifact::load_heldout(dir.string()), "heldout", o);
  EXPECT_FALSE(gate.passed);
  EXPECT_GT(gate.drop_points, 1.0);
  ASSERT_EQ(gate.worst_layers.size(), 2u);
  EXPECT_EQ(gate.worst_layers[0].first, "output");
  EXPECT_GT(gate.worst_layers[0].second, gate.worst_layers[1].second);
  EXPECT_TRUE(fp32.model()->kernels().empty());
  fs::remove_all(root);
}
