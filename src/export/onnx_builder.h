// A minimal ONNX protobuf writer: the wire format of the few onnx.proto messages a Kiln graph needs
// (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto), field numbers
// as in onnx/onnx.proto (IR version 8). No libprotobuf: the messages are written field by field.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::onnx {

/// Appends protobuf fields to a byte string.
class ProtoWriter {
 public:
  void varint_field(int field, uint64_t v) {
    key(field, 0);
    varint(v);
  }
  void bytes_field(int field, std::string_view s) {
    key(field, 2);
    varint(s.size());
    out_.append(s.data(), s.size());
  }
  void float_field(int field, float v) {
    key(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    out_.append(b, 4);
  }
  [[nodiscard]] const std::string& bytes() const { return out_; }

 private:
  void key(int field, int wire) { varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

/// One node attribute.
struct Attribute {
  std::string name;
  enum class Kind { kInt, kFloat, kInts } kind = Kind::kInt;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
  static Attribute integer(std::string n, int64_t v) { return {std::move(n), Kind::kInt, v, 0, {}}; }
  static Attribute real(std::string n, float v) { return {std::move(n), Kind::kFloat, 0, v, {}}; }
  static Attribute integers(std::string n, std::vector<int64_t> v) { return {std::move(n), Kind::kInts, 0, 0, std::move(v)}; }
};

/// A dimension of a graph input or output: a fixed size or a symbolic name ("batch", "sequence").
struct Dim {
  int64_t value = 0;
  std::string param;
};

/// Builds one graph: initializers, nodes, inputs and outputs; then the model bytes.
class GraphBuilder {
 public:
  /// A constant (float32, int64 or int32 tensor), stored as raw little-endian data. Returns its name.
  std::string constant(const std::string& name, const torch::Tensor& t);
  /// An int64 1-D constant.
  std::string ints(const std::string& name, const std::vector<int64_t>& values);
  /// A float32 scalar constant.
  std::string scalar(const std::string& name, float value);
  /// Adds node `op` reading `inputs`; returns its (single) output's name, made from `name`.
  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                   const std::vector<Attribute>& attributes = {});
  /// elem_type: 1 float32, 7 int64.
  void input(const std::string& name, int elem_type, const std::vector<Dim>& dims);
  void output(const std::string& name, int elem_type, const std::vector<Dim>& dims);
  /// The ModelProto bytes: IR version 8, the default domain at `opset`, `metadata` as metadata_props.
  [[nodiscard]] std::string model(int64_t opset, const std::string& graph_name,
                                  const std::vector<std::pair<std::string, std::string>>& metadata) const;

 private:
  std::string value_info(const std::string& name, int elem_type, const std::vector<Dim>& dims) const;
  std::vector<std::string> nodes_, initializers_, inputs_, outputs_;
  std::vector<std::string> used_;
  std::string unique(const std::string& name);
};

}  // namespace kiln::onnx
