// kiln export --format onnx: an artifact's model as an ONNX graph (opset 14, IR 8), written without
// Python or libprotobuf. Dynamic batch (and sequence) axes; the labels in the metadata.
//   linear, mlp, embedbag: one dense input "features" float32 [batch, features] (the preprocessor's
//     bag as a dense row: feature id → weight, ids repeated in a bag add up), then MatMul; ONNX has
//     no EmbeddingBag with offsets, and a dense row is exactly the bag's sum. TF-IDF or hashing runs
//     outside the graph (kiln's preprocessor; see docs/export.md).
//   bert: "input_ids", "attention_mask", "token_type_ids" int64 [batch, sequence] → "logits".
// Output: "logits" float32 [batch, classes] (before calibration: probabilities are
// softmax(logits / temperature), the temperature in the metadata).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "kiln/artifact/artifact.h"
#include "kiln/nn/batch.h"

namespace kiln::onnx {

struct OnnxExportOptions {
  /// ONNX opset of the default domain, 14..17. Default 14.
  int64_t opset = 14;
};
/// Throws ConfigError naming the field.
void validate(const OnnxExportOptions& options);

/// The model file's bytes. Throws ConfigError naming the family or the parameter the exporter cannot
/// express (e.g. an unknown activation) and listing the families it knows.
[[nodiscard]] std::string export_onnx(const artifact::Artifact& artifact, const OnnxExportOptions& options = {});

/// Families export_onnx knows, sorted.
[[nodiscard]] std::vector<std::string> onnx_families();

/// The exported graph's inputs for a Kiln batch of `artifact` (as its preprocessors encode it): the
/// dense "features" matrix for bag families, the id tensors for bert. Feeding them to the ONNX model
/// gives Predictor::forward's logits.
[[nodiscard]] std::map<std::string, torch::Tensor> onnx_inputs(const artifact::Artifact& artifact, const nn::Batch& batch);

}  // namespace kiln::onnx
