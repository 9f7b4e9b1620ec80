#include "onnx_builder.h"

#include <algorithm>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/core/version.h"

namespace kiln::onnx {
namespace {

// onnx.proto TensorProto.DataType
int onnx_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return 1;
    case torch::kInt64: return 7;
    case torch::kInt32: return 6;
    default: throw ConfigError("onnx export: no ONNX type for tensor dtype " + std::string(c10::toString(t)));
  }
}

}  // namespace

std::string GraphBuilder::unique(const std::string& name) {
  std::string n = name;
  for (int k = 2; std::find(used_.begin(), used_.end(), n) != used_.end(); ++k) n = name + "_" + std::to_string(k);
  used_.push_back(n);
  return n;
}

std::string GraphBuilder::constant(const std::string& name, const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU).contiguous();
  const std::string n = unique(name);
  ProtoWriter w;
  for (const auto d : c.sizes()) w.varint_field(1, static_cast<uint64_t>(d));  // dims
  w.varint_field(2, static_cast<uint64_t>(onnx_type(c.scalar_type())));       // data_type
  w.bytes_field(8, n);                                                         // name
  w.bytes_field(9, std::string_view(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.nbytes())));  // raw_data
  initializers_.push_back(w.bytes());
  return n;
}

std::string GraphBuilder::ints(const std::string& name, const std::vector<int64_t>& values) {
  return constant(name, torch::tensor(values, torch::kInt64));
}

std::string GraphBuilder::scalar(const std::string& name, float value) {
  return constant(name, torch::full({}, value, torch::kFloat32));
}

std::string GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                               const std::vector<Attribute>& attributes) {
  const std::string out = unique(name);
  ProtoWriter w;
  for (const auto& i : inputs) w.bytes_field(1, i);
  w.bytes_field(2, out);
  w.bytes_field(3, out);  // node name = its output's
  w.bytes_field(4, op);
  for (const auto& a : attributes) {
    ProtoWriter aw;
    aw.bytes_field(1, a.name);
    switch (a.kind) {
      case Attribute::Kind::kInt:
        aw.varint_field(3, static_cast<uint64_t>(a.i));
        aw.varint_field(20, 2);  // INT
        break;
      case Attribute::Kind::kFloat:
        aw.float_field(2, a.f);
        aw.varint_field(20, 1);  // FLOAT
        break;
      case Attribute::Kind::kInts:
        for (const auto v : a.ints) aw.varint_field(8, static_cast<uint64_t>(v));
        aw.varint_field(20, 7);  // INTS
        break;
    }
    w.bytes_field(5, aw.bytes());
  }
  nodes_.push_back(w.bytes());
  return out;
}

std::string GraphBuilder::value_info(const std::string& name, int elem_type, const std::vector<Dim>& dims) const {
  ProtoWriter shape;
  for (const auto& d : dims) {
    ProtoWriter dw;
    if (d.param.empty()) {
      dw.varint_field(1, static_cast<uint64_t>(d.value));
    } else {
      dw.bytes_field(2, d.param);
    }
    shape.bytes_field(1, dw.bytes());
  }
  ProtoWriter tensor;
  tensor.varint_field(1, static_cast<uint64_t>(elem_type));
  tensor.bytes_field(2, shape.bytes());
  ProtoWriter type;
  type.bytes_field(1, tensor.bytes());
  ProtoWriter vi;
  vi.bytes_field(1, name);
  vi.bytes_field(2, type.bytes());
  return vi.bytes();
}

void GraphBuilder::input(const std::string& name, int elem_type, const std::vector<Dim>& dims) {
  used_.push_back(name);
  inputs_.push_back(value_info(name, elem_type, dims));
}

void GraphBuilder::output(const std::string& name, int elem_type, const std::vector<Dim>& dims) {
  outputs_.push_back(value_info(name, elem_type, dims));
}

std::string GraphBuilder::model(int64_t opset, const std::string& graph_name,
                                const std::vector<std::pair<std::string, std::string>>& metadata) const {
  ProtoWriter g;
  for (const auto& n : nodes_) g.bytes_field(1, n);
  g.bytes_field(2, graph_name);
  for (const auto& t : initializers_) g.bytes_field(5, t);
  for (const auto& i : inputs_) g.bytes_field(11, i);
  for (const auto& o : outputs_) g.bytes_field(12, o);
  ProtoWriter m;
  m.varint_field(1, 8);  // ir_version
  m.bytes_field(2, "kiln");
  m.bytes_field(3, kiln::version());
  m.bytes_field(7, g.bytes());
  ProtoWriter op;
  op.bytes_field(1, "");
  op.varint_field(2, static_cast<uint64_t>(opset));
  m.bytes_field(8, op.bytes());
  for (const auto& [k, v] : metadata) {
    ProtoWriter e;
    e.bytes_field(1, k);
    e.bytes_field(2, v);
    m.bytes_field(14, e.bytes());
  }
  return m.bytes();
}

}  // namespace kiln::onnx
