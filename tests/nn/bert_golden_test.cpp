// BERT parity with a hand-written reference of Hugging Face's BertModel on python3-torch
// (tests/golden/make_bert_golden.py): last hidden states, pooled output, classification logits
// (cls and mean pooling) and MLM logits, with and without padding, single and paired segments,
// through LibTorch's fused encoder-layer kernel and op by op.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include "kiln/core/safetensors.h"
#include "kiln/nn/bert.h"

namespace fs = std::filesystem;

namespace kiln::nn {
namespace {

const fs::path kDir = fs::path(KILN_GOLDEN_DIR) / "nn" / "bert";
constexpr double kTolerance = 1e-5;

torch::Tensor tensor_of(const core::SafetensorsFile& file, const std::string& name) {
  const auto& v = file.get(name);
  const auto type = v.dtype == core::DType::kI64 ? torch::kInt64 : torch::kFloat32;
  return torch::from_blob(const_cast<std::byte*>(v.data), v.shape, torch::TensorOptions().dtype(type)).clone();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

/// The largest difference seen per output, printed at the end (the parity figure to report).
std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}

void check(const std::string& what, const torch::Tensor& got, const torch::Tensor& want, const std::string& where) {
  const double d = max_abs_diff(got, want);
  EXPECT_LT(d, kTolerance) << what << " (" << where << ")";
  worst()[what] = std::max(worst()[what], d);
}

Batch batch_of(const core::SafetensorsFile& cases, const std::string& c, bool with_types) {
  Batch b(4);
  b.set(kInputIds, tensor_of(cases, c + ".input_ids"));
  b.set(kAttentionMask, tensor_of(cases, c + ".attention_mask"));
  if (with_types) b.set(kTokenTypeIds, tensor_of(cases, c + ".token_type_ids"));
  return b;
}

TEST(BertGolden, CheckpointLoadsWithReport) {
  const auto loaded = load_hf_checkpoint(kDir);
  const auto& r = loaded.report;
  EXPECT_TRUE(r.prefixed);
  EXPECT_TRUE(r.missing.empty()) << r.missing.front();
  EXPECT_TRUE(r.unexpected.empty()) << r.unexpected.front();
  EXPECT_TRUE(r.classifier_loaded);
  EXPECT_EQ(r.classifier_reinitialized, "");
  EXPECT_EQ(r.heads_ignored.size(), 5u);  // cls.predictions.{bias, transform.dense.*, transform.LayerNorm.*}
  EXPECT_EQ(loaded.model->num_classes(), 3);
  EXPECT_EQ(loaded.model->embedding_dim(), 32);
}

TEST(BertGolden, MatchesReference) {
  auto loaded = load_hf_checkpoint(kDir);
  BertModel& model = *loaded.model;
  model.eval();
  BertLoadOptions mean_options;
  mean_options.pooling = BertPooling::kMean;
  auto mean_model = load_hf_checkpoint(kDir, mean_options).model;
  mean_model->eval();
  const auto weights = core::SafetensorsFile::load(kDir / "model.safetensors");
  BertMlmHead head(model.options().config, model.word_embeddings_weight());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : head.named_parameters()) p.value().copy_(tensor_of(weights, "cls.predictions." + p.key()));
  }
  const auto cases = core::SafetensorsFile::load(kDir / "cases.safetensors");
  for (const std::string c : {"single", "padded", "paired"}) {
    for (const bool fused : {true, false}) {
      const std::string where = c + (fused ? ", fused kernel" : ", op by op");
      model.set_fused_inference(fused);
      mean_model->set_fused_inference(fused);
      torch::InferenceMode guard;
      const auto out = model.encode(tensor_of(cases, c + ".input_ids"), tensor_of(cases, c + ".attention_mask"),
                                    tensor_of(cases, c + ".token_type_ids"));
      check("last_hidden_state", out.last_hidden_state, tensor_of(cases, c + ".last_hidden_state"), where);
      check("pooler_output", out.pooler_output, tensor_of(cases, c + ".pooler_output"), where);
      // "single" leaves token_type_ids out: the model reads zeros.
      const auto batch = batch_of(cases, c, c != "single");
      check("logits (cls)", model.forward(batch), tensor_of(cases, c + ".logits_cls"), where);
      check("mean pooled", mean_model->embed(batch), tensor_of(cases, c + ".mean_pooled"), where);
      check("logits (mean)", mean_model->forward(batch), tensor_of(cases, c + ".logits_mean"), where);
      check("mlm logits", head.forward(out.last_hidden_state), tensor_of(cases, c + ".mlm_logits"), where);
    }
  }
  // Gradients on: the op-by-op path, as training runs it (the fused kernel needs InferenceMode).
  model.set_fused_inference(true);
  const auto logits = model.forward(batch_of(cases, "paired", true));
  check("logits (cls)", logits.detach(), tensor_of(cases, "paired.logits_cls"), "paired, autograd");
  for (const auto& [what, d] : worst()) std::cout << "[bert parity] " << what << " max abs diff " << d << "\n";
}

}  // namespace
}  // namespace kiln::nn
