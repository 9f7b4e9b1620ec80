// kiln plan: the counted layouts equal the built LibTorch models, the formulas as documented, and
// every bad request's message.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <utility>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/nn/input_spec.h"
#include "kiln/nn/model.h"
#include "kiln/plan/plan.h"
#include "kiln/train/step_probe.h"

using namespace kiln;

namespace {

struct Counted {
  int64_t params = 0, buffers = 0;
};

Counted built(const std::string& family, const nlohmann::json& params, const nn::InputSpec& inputs, int64_t classes) {
  nn::ModelSpec spec;
  spec.family = family;
  spec.params = params;
  auto model = nn::make_model(spec, inputs, classes);
  Counted c;
  for (const auto& p : model->parameters()) c.params += p.numel();
  for (const auto& b : model->buffers()) c.buffers += b.numel();
  return c;
}

nn::InputSpec bag(int64_t features) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kBagIndices, "int64", {"nnz"}, features});
  s.tensors.push_back({nn::kBagOffsets, "int64", {"batch"}, 0});
  s.tensors.push_back({nn::kBagWeights, "float32", {"nnz"}, 0});
  return s;
}

nn::InputSpec tokens(int64_t vocab) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kInputIds, "int64", {"batch", "sequence"}, vocab});
  s.tensors.push_back({nn::kAttentionMask, "int64", {"batch", "sequence"}, 0});
  s.tensors.push_back({nn::kTokenTypeIds, "int64", {"batch", "sequence"}, 0});
  return s;
}

nn::InputSpec pixels(int64_t channels, int64_t side) {
  nn::InputSpec s;
  s.tensors.push_back({nn::kPixelValues, "float32", {"batch", std::to_string(channels), std::to_string(side), std::to_string(side)}, 0});
  return s;
}

plan::ModelShape counted(const std::string& family, const nlohmann::json& params, plan::JobSpec job) {
  return plan::spec_shape({{"family", family}, {"params", params}}, job, "test");
}

}  // namespace

TEST(PlanShapes, ParameterCountsEqualTheBuiltModels) {
  plan::JobSpec job;
  job.classes = 7;
  job.features = 3000;
  job.vocab_size = 1000;
  job.image_size = 32;
  for (const std::string size : {"tiny", "mini"}) {
    for (const bool pre_ln : {false, true}) {
      const nlohmann::json p = {{"preset", size}, {"pre_ln", pre_ln}};
      EXPECT_EQ(counted("bert", p, job).params, built("bert", p, tokens(1000), 7).params) << size << " pre_ln " << pre_ln;
    }
  }
  for (const auto& p : {nlohmann::json{{"hidden", {64}}}, nlohmann::json{{"hidden", {64, 32}}, {"layer_norm", true}}}) {
    EXPECT_EQ(counted("mlp", p, job).params, built("mlp", p, bag(3000), 7).params) << p.dump();
  }
  for (const auto& p : {nlohmann::json::object(), nlohmann::json{{"dim", 16}, {"hidden", 8}}}) {
    EXPECT_EQ(counted("embedbag", p, job).params, built("embedbag", p, bag(3000), 7).params) << p.dump();
  }
  EXPECT_EQ(counted("linear", nlohmann::json::object(), job).params, built("linear", nlohmann::json::object(), bag(3000), 7).params);
  const nlohmann::json small = {{"preset", "small"}};
  const plan::ModelShape s = counted("cnn", small, job);
  const Counted sb = built("cnn", small, pixels(1, 32), 7);
  EXPECT_EQ(s.params, sb.params);
  EXPECT_EQ(s.buffers, sb.buffers);
  const nlohmann::json resnet = {{"preset", "resnet18"}};
  job.classes = 1000;
  EXPECT_EQ(counted("cnn", resnet, job).params, built("cnn", resnet, pixels(3, 64), 1000).params);
  EXPECT_EQ(counted("cnn", resnet, job).params, 11689512);  // torchvision's resnet18, 1000 classes
}

TEST(PlanShapes, BertFlopsAndActivationsFollowTheFormulas) {
  plan::JobSpec job;
  job.seq_len = 128;
  const plan::ModelShape m = plan::preset_shape("bert-base", job);
  EXPECT_EQ(m.params, 109483778);  // BertForSequenceClassification, 2 labels
  const double s = 128, h = 768, a = 12, L = 12;
  EXPECT_DOUBLE_EQ(m.activation_bytes_16, L * s * h * (34 + 5 * a * s / h) + 5 * s * h);
  // 6 x params x tokens, give or take the attention scores and the embeddings (no FLOPs).
  const double six_p_t = 6.0 * static_cast<double>(m.params - m.embedding_params) * s;
  EXPECT_NEAR(3 * m.forward_flops / six_p_t, 1.0, 0.1);
}

TEST(PlanEstimate, RingAllReduceAndExposedCommunication) {
  plan::JobSpec job;
  job.batch = 16;
  const plan::ModelShape m = plan::preset_shape("bert-base", job);
  plan::RunSpec one;
  one.device = "a100-80g";
  const plan::Estimate e1 = plan::estimate(m, job, one);
  plan::RunSpec eight = one;
  eight.n = 8;
  eight.interconnect = "pcie";
  const plan::Estimate e8 = plan::estimate(m, job, eight);
  const double bytes = 4.0 * static_cast<double>(m.params);
  EXPECT_DOUBLE_EQ(e8.gradient_bytes, bytes);
  EXPECT_NEAR(e8.allreduce_s, 2.0 * 7 / 8 * bytes / (32e9 * 0.7), 1e-12);
  EXPECT_NEAR(e8.exposed_comm_s, std::max(0.0, e8.allreduce_s - 0.9 * e1.compute_s * 2 / 3), 1e-12);
  EXPECT_NEAR(e8.speedup, 8 * e1.step_s / (e1.step_s + e8.exposed_comm_s), 1e-9);
  EXPECT_LT(e8.speedup, 8.0);
  eight.interconnect = "nvlink";
  EXPECT_GT(plan::estimate(m, job, eight).speedup, e8.speedup);  // a faster link hides more
  // Memory: fp32 master + bf16 copy, fp32 grads, AdamW m and v.
  EXPECT_DOUBLE_EQ(e1.optimizer_bytes, 8.0 * static_cast<double>(m.params));
  EXPECT_DOUBLE_EQ(e1.grads_bytes, 4.0 * static_cast<double>(m.params));
  // The trainer's copy of the best epoch's weights; none when only inferring.
  EXPECT_DOUBLE_EQ(e1.best_weights_bytes, 4.0 * static_cast<double>(m.params + m.buffers));
  EXPECT_DOUBLE_EQ(e1.memory_per_device, e1.params_bytes + e1.grads_bytes + e1.optimizer_bytes + e1.activation_bytes +
                                             e1.runtime_bytes + e1.data_bytes + e1.best_weights_bytes);
  plan::JobSpec infer = job;
  infer.inference = true;
  EXPECT_DOUBLE_EQ(plan::estimate(m, infer, one).best_weights_bytes, 0.0);
  plan::RunSpec bf16 = eight;
  bf16.grad_dtype = "bf16";
  EXPECT_DOUBLE_EQ(plan::estimate(m, job, bf16).gradient_bytes, bytes / 2);
  EXPECT_TRUE(e1.fits);
  job.batch = 4096;
  EXPECT_FALSE(plan::estimate(m, job, one).fits);
}

TEST(PlanEstimate, BagModelsAllReduceOnlyTouchedRows) {
  plan::JobSpec job;
  job.features = 1000000;
  job.seq_len = 20;
  job.batch = 8;
  const plan::ModelShape m = plan::preset_shape("mlp", job);
  plan::RunSpec run;
  run.device = "a100-40g";
  run.n = 2;
  const plan::Estimate e = plan::estimate(m, job, run);
  const double dense = static_cast<double>(m.params - m.embedding_params);
  // Each rank touches at most 8 x 20 = 160 rows; the ranks all-reduce the union, at most 2 x 160.
  EXPECT_DOUBLE_EQ(e.gradient_bytes, 4 * dense + 320 * (4 * 512 + 8));
}

TEST(PlanErrors, NameTheFlagAndTheFix) {
  plan::JobSpec job;
  auto message = [&](auto&& fn) {
    try {
      fn();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { (void)plan::preset_shape("bert-huge", job); }).find("is not a preset (bert-tiny"), std::string::npos);
  EXPECT_NE(message([&] { (void)plan::device("tpu"); }).find("--gpu \"tpu\" is not in the device table"), std::string::npos);
  const plan::ModelShape m = plan::preset_shape("bert-tiny", job);
  plan::RunSpec l4;
  l4.device = "l4";
  l4.n = 2;
  l4.interconnect = "nvlink";
  EXPECT_NE(message([&] { (void)plan::estimate(m, job, l4); }).find("l4 has pcie, ib; pick one of those"), std::string::npos);
  plan::RunSpec bad;
  bad.mfu = 0;
  EXPECT_NE(message([&] { (void)plan::estimate(m, job, bad); }).find("--mfu must be in (0, 1]"), std::string::npos);
  job.seq_len = 1024;
  EXPECT_NE(message([&] { (void)plan::preset_shape("bert-tiny", job); }).find("longer than the model's 512 position"),
            std::string::npos);
  EXPECT_NE(message([&] { (void)plan::spec_shape({{"family", "gru"}}, job, "x.yaml"); })
                .find("x.yaml: kiln plan does not know the model family \"gru\""),
            std::string::npos);
}

namespace {

/// FLOPs of a step's matrix products per its kernel list (multiply-add = 2).
double kernel_flops(const plan::ModelShape& m) {
  double f = 0;
  for (const auto& k : m.kernels) {
    const auto& d = k.dims;
    if (k.op == "linear") f += k.count * 2.0 * static_cast<double>(d[0] * d[1] * d[2]);
    if (k.op == "matmul") f += k.count * 2.0 * static_cast<double>(d[0] * d[1] * d[2] * d[3]);
    if (k.op == "embedding_bag") f += k.count * 2.0 * static_cast<double>(d[1] * d[2] * d[3]);
    if (k.op == "conv2d") {
      // {batch, c_in, h, w, c_out, k, stride, padding}: 2·k²·c_in per output element.
      const int64_t oh = (d[2] + 2 * d[7] - d[5]) / d[6] + 1, ow = (d[3] + 2 * d[7] - d[5]) / d[6] + 1;
      f += k.count * 2.0 * static_cast<double>(d[0] * d[5] * d[5] * d[1] * d[4] * oh * ow);
    }
  }
  return f;
}

}  // namespace

TEST(PlanKernels, TheStepsOpsCarryTheCountedFlops) {
  plan::JobSpec job;
  job.seq_len = 64, job.batch = 8, job.classes = 3, job.features = 5000;
  job.image_size = 32;
  for (const char* preset : {"bert-tiny", "bert-mini", "mlp", "embedbag", "linear", "resnet18", "cnn-small"}) {
    SCOPED_TRACE(preset);
    const plan::ModelShape m = plan::preset_shape(preset, job);
    ASSERT_FALSE(m.kernels.empty());
    EXPECT_NEAR(kernel_flops(m) / (m.forward_flops * static_cast<double>(job.batch)), 1.0, 1e-12);
    EXPECT_EQ(m.kernels.back().op, m.sparse_embedding ? "adamw_rows" : "adamw");
  }
  // BERT's AdamW updates every parameter; a bag model's, the dense ones and the touched rows.
  EXPECT_EQ(plan::preset_shape("bert-tiny", job).kernels.back().dims[0], plan::preset_shape("bert-tiny", job).params);
  job.seq_len = 10;  // 8 x 10 = 80 touched rows of the 5000
  const plan::ModelShape mlp = plan::preset_shape("mlp", job);
  // Its AdamW: the dense parameters, and the touched rows of the table in place.
  EXPECT_EQ(mlp.kernels.back().dims, (std::vector<int64_t>{5000, 512, 80}));
  EXPECT_EQ(mlp.kernels[mlp.kernels.size() - 2].op, "adamw");
  EXPECT_EQ(mlp.kernels[mlp.kernels.size() - 2].dims[0], mlp.params - mlp.embedding_params);
  EXPECT_EQ(mlp.kernels[mlp.kernels.size() - 3].dims[0], mlp.params - mlp.embedding_params + 80 * 512);  // grad_norm
  job.ranks = 2;  // the reduced gradient holds both ranks' rows
  EXPECT_EQ(plan::preset_shape("mlp", job).kernels.back().dims, (std::vector<int64_t>{5000, 512, 160}));
}

TEST(PlanKernels, BagModelsTouchTheRowsABatchHits) {
  plan::JobSpec job;
  job.seq_len = 10, job.batch = 8, job.features = 5000;
  // At most batch x seq-len rows; --rows-per-batch gives the data's own (texts share features).
  EXPECT_EQ(plan::rows_touched(job), 80);
  job.rows_per_batch = 30;
  EXPECT_EQ(plan::rows_touched(job), 30);
  const plan::ModelShape mlp = plan::preset_shape("mlp", job);
  EXPECT_EQ(mlp.kernels.front().op, "embedding_bag");
  EXPECT_EQ(mlp.kernels.front().dims, (std::vector<int64_t>{5000, 512, 8, 10, 30}));
  EXPECT_EQ(mlp.kernels.back().dims, (std::vector<int64_t>{5000, 512, 30}));
  job.rows_per_batch = 1000;  // never more than the bound
  EXPECT_EQ(plan::rows_touched(job), 80);
  // embedbag (no hidden layer, no dropout): the pooled bag goes straight to the classifier.
  const plan::ModelShape bag = plan::preset_shape("embedbag", job);
  std::vector<std::string> ops;
  for (const auto& k : bag.kernels) ops.push_back(k.op);
  EXPECT_EQ(ops, (std::vector<std::string>{"embedding_bag", "linear", "cross_entropy", "grad_norm", "adamw",
                                           "adamw_rows"}));
  // mlp: the sum, ReLU and dropout (its default 0.2), the classifier.
  ops.clear();
  for (const auto& k : mlp.kernels) ops.push_back(k.op);
  EXPECT_EQ(ops, (std::vector<std::string>{"embedding_bag", "relu", "dropout", "linear", "cross_entropy", "grad_norm",
                                           "adamw", "adamw_rows"}));
}

TEST(PlanKernels, EveryCollectiveOfAStepPaysTheMeasuredLatency) {
  plan::JobSpec job;
  job.seq_len = 10, job.batch = 8, job.features = 5000, job.rows_per_batch = 40;
  const plan::ModelShape m = plan::preset_shape("mlp", job);
  plan::KernelTimes t;
  t.forward_s.assign(m.kernels.size(), 1e-3);
  t.backward_s.assign(m.kernels.size(), 1e-3);
  t.saved_bytes.assign(m.kernels.size(), 0);
  t.runtime_bytes = 1e8;
  t.threads = 1;
  t.source = "test";
  t.allreduce_bytes_per_s = 1e9;
  t.collective_latency_s = 1e-4;
  plan::RunSpec run;
  run.n = 2;
  run.measured = &t;
  const plan::Estimate e = plan::estimate(m, job, run);
  // Two ranks' rows: at most 2 x 40 of the table. The dense head (under 256 KiB) rides in the
  // table's all-reduce; the table adds its all-gather of row ids: 2 collectives after backward, 1
  // beyond the one timed. The totals go out before backward, which hides them (2 ms > 0.1 ms).
  const double dense = static_cast<double>(m.params - m.embedding_params);
  EXPECT_LT(4 * dense, 256 * 1024);
  EXPECT_DOUBLE_EQ(e.gradient_bytes, 4 * dense + 80 * (4 * 512 + 8));
  EXPECT_NEAR(e.allreduce_s, e.gradient_bytes / 1e9 + 1e-4, 1e-12);
  // A backward too short to hide them: the totals' latency is paid too.
  t.backward_s.assign(m.kernels.size(), 0.0);
  EXPECT_NEAR(plan::estimate(m, job, run).allreduce_s, e.gradient_bytes / 1e9 + 2e-4, 1e-12);
  t.backward_s.assign(m.kernels.size(), 1e-3);
  t.collective_latency_s = 0;  // not measured: the ring formula alone
  EXPECT_NEAR(plan::estimate(m, job, run).allreduce_s, e.gradient_bytes / 1e9, 1e-12);
}

TEST(PlanKernels, ResNet18sStepHasItsConvolutionsBatchNormsAndResidualAdds) {
  plan::JobSpec job;
  job.batch = 4, job.classes = 10, job.image_size = 64;
  const plan::ModelShape m = plan::preset_shape("resnet18", job);
  auto count = [&m](const std::string& op) {
    double n = 0;
    for (const auto& k : m.kernels) n += k.op == op ? k.count : 0;
    return n;
  };
  // torchvision's resnet18: 17 3x3/7x7 convolutions plus 3 1x1 downsamples, each with a BatchNorm;
  // 8 residual adds; one max pool after the stem.
  EXPECT_EQ(count("conv2d"), 20);
  EXPECT_EQ(count("batch_norm"), 20);
  EXPECT_EQ(count("add"), 8);
  EXPECT_EQ(count("max_pool"), 1);
  EXPECT_EQ(count("mean_pool"), 1);
  EXPECT_EQ(count("relu"), 17);  // the stem's and two per block
  // The stem reads 3 channels at 64 px without an input gradient; its BatchNorm sees 32 px.
  const plan::StepKernel& stem = m.kernels.front();
  EXPECT_EQ(stem.op, "conv2d");
  EXPECT_EQ(stem.dims, (std::vector<int64_t>{4, 3, 64, 64, 64, 7, 2, 3}));
  EXPECT_FALSE(stem.input_grad);
  EXPECT_EQ(m.kernels[1].op, "batch_norm");
  EXPECT_EQ(m.kernels[1].dims, (std::vector<int64_t>{4, 64, 32, 32}));
  // The last stage runs at 2x2 with 512 channels; pooling gives the classifier 512 features.
  bool last = false, head = false;
  for (const auto& k : m.kernels) {
    last |= k.op == "batch_norm" && k.dims == std::vector<int64_t>{4, 512, 2, 2};
    head |= k.op == "linear" && k.dims == std::vector<int64_t>{4, 512, 10};
  }
  EXPECT_TRUE(last);
  EXPECT_TRUE(head);
  EXPECT_EQ(m.kernels.back().op, "adamw");
  EXPECT_EQ(m.kernels.back().dims[0], m.params);
}

TEST(PlanKernels, MeasuredTimesAndSavedBytesMakeTheCpuEstimate) {
  plan::JobSpec job;
  job.seq_len = 32, job.batch = 4;
  const plan::ModelShape m = plan::preset_shape("bert-tiny", job);
  plan::KernelTimes t;
  double fwd = 0, bwd = 0, kept = 0;
  for (std::size_t i = 0; i < m.kernels.size(); ++i) {
    t.forward_s.push_back(1e-3 * static_cast<double>(i + 1));
    t.backward_s.push_back(2e-3);
    t.saved_bytes.push_back(1000.0 * static_cast<double>(i));
    fwd += m.kernels[i].count * t.forward_s.back();
    bwd += m.kernels[i].count * 2e-3;
    kept += m.kernels[i].count * t.saved_bytes.back();
  }
  t.runtime_bytes = 123e6;
  t.source = "test";
  plan::RunSpec run;
  run.measured = &t;
  const plan::Estimate e = plan::estimate(m, job, run);
  EXPECT_TRUE(e.measured);
  EXPECT_NEAR(e.compute_s, fwd + bwd, 1e-12);
  EXPECT_NEAR(e.backward_s, bwd, 1e-12);
  EXPECT_DOUBLE_EQ(e.activation_bytes, kept);
  EXPECT_DOUBLE_EQ(e.runtime_bytes, 123e6);
  // Two ranks whose threads fill the cores: the all-reduce cannot hide behind backward.
  run.n = 2;
  t.threads = std::max(1, core::cpu_info().logical_cores);
  const plan::Estimate two = plan::estimate(m, job, run);
  EXPECT_NEAR(two.exposed_comm_s, two.allreduce_s, 1e-15);
  EXPECT_GT(two.allreduce_s, 0);
  run.n = 1;
  // Another device ignores them; inference too.
  run.device = "h100";
  EXPECT_FALSE(plan::estimate(m, job, run).measured);
  // A timing list of the wrong length is refused.
  run.device = "cpu";
  t.forward_s.pop_back();
  try {
    (void)plan::estimate(m, job, run);
    ADD_FAILURE() << "a short timing list should be refused";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("kernels; measure again"), std::string::npos) << err.what();
  }
}

TEST(PlanKernels, TheProbeTimesEveryOpOfAStep) {
  plan::JobSpec job;
  job.seq_len = 16, job.batch = 2, job.features = 300, job.image_size = 12;
  for (const auto& [preset, ranks] :
       {std::pair<const char*, int>{"bert-tiny", 1}, {"mlp", 1}, {"mlp", 2}, {"cnn-small", 1}}) {
    SCOPED_TRACE(std::string(preset) + " x " + std::to_string(ranks));
    const plan::ModelShape m = plan::preset_shape(preset, job);
    nlohmann::json request = {{"kernels", plan::kernels_to_json(m.kernels)}, {"threads", 1}, {"ranks", ranks}};
    if (ranks > 1) request["link_bytes"] = 1 << 20;
    const nlohmann::json answer = train::time_step_kernels(request);
    EXPECT_EQ(answer.at("ranks"), ranks);
    EXPECT_EQ(answer.contains("allreduce_bytes_per_s"), ranks > 1);
    if (ranks > 1) {
      EXPECT_GT(answer.at("allreduce_bytes_per_s").get<double>(), 0);
      EXPECT_GT(answer.at("collective_latency_s").get<double>(), 0);
      // The estimate uses the measured link instead of the table's shm assumption.
      plan::KernelTimes t = plan::kernel_times_from_json(answer, m.kernels.size());
      plan::RunSpec run;
      run.n = 2;
      run.measured = &t;
      const plan::Estimate e = plan::estimate(m, job, run);
      EXPECT_DOUBLE_EQ(e.link.bandwidth_bytes, t.allreduce_bytes_per_s);
      EXPECT_NE(e.link.source.find("measured here"), std::string::npos);
    }
    const plan::KernelTimes t = plan::kernel_times_from_json(answer, m.kernels.size());
    EXPECT_EQ(t.threads, 1);
    EXPECT_GT(t.runtime_bytes, 0);
    for (std::size_t i = 0; i < m.kernels.size(); ++i) {
      SCOPED_TRACE(m.kernels[i].op);
      EXPECT_GT(t.forward_s[i], 0);
      if (m.kernels[i].backward) {
        EXPECT_GT(t.backward_s[i], 0);
        EXPECT_GT(t.saved_bytes[i], 0);  // at least its output
      }
    }
  }
}

TEST(PlanKernels, TheProbeNamesABadKernel) {
  auto message = [](const nlohmann::json& request) {
    try {
      (void)train::time_step_kernels(request);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"kernels", {{{"op", "conv9d"}, {"dims", {1}}}}}}).find("kernel 0 has the unknown op \"conv9d\""),
            std::string::npos);
  EXPECT_NE(message({{"kernels", {{{"op", "linear"}, {"dims", {2, 3}}}}}}).find("kernel 0 (linear) needs 3 dims, got 2"),
            std::string::npos);
  EXPECT_NE(message({{"kernels", {{{"op", "linear"}, {"dims", {2, 0, 3}}}}}}).find("has a dimension < 1"),
            std::string::npos);
  EXPECT_NE(message({{"nothing", 1}}).find("has no \"kernels\" list"), std::string::npos);
  EXPECT_NE(message({{"kernels", nlohmann::json::array()}, {"ranks", 0}}).find("ranks must be in [1, 256], got 0"),
            std::string::npos);
  try {
    (void)plan::kernel_times_from_json({{"forward_s", {1.0}}}, 1);
    ADD_FAILURE() << "an incomplete answer should be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not {forward_s, backward_s, saved_bytes"), std::string::npos) << e.what();
  }
}
