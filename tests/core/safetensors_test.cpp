#include "kiln/core/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "lib/require_tools.h"
#include "lib/scratch_files.h"

namespace fs = std::filesystem;
using kiln::core::DType;
using kiln::core::SafetensorsFile;
using kiln::core::TensorData;
using kiln::core::TensorView;

namespace {

fs::path fresh_dir(const std::string& name) { return kiln::testing::fresh_dir("kiln_st_test", name); }
using kiln::testing::slurp;

void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

/// A file image: size prefix, header text, data bytes.
std::string image(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

template <typename T>
TensorData make(DType dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  TensorData t{dtype, std::move(shape), std::vector<std::byte>(values.size() * sizeof(T))};
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

template <typename T>
std::vector<T> values_of(const TensorView& v) {
  std::vector<T> out(v.nbytes / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data, v.nbytes);  // data may be unaligned in foreign files
  return out;
}

/// Loads `bytes` from a file and returns the ArtifactError message (fails the test if none).
std::string load_error(const std::string& bytes) {
  fs::path p = fresh_dir("corrupt") / "model.safetensors";
  spit(p, bytes);
  try {
    (void)SafetensorsFile::load(p);
  } catch (const kiln::ArtifactError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(p.string() + ": "), std::string::npos) << "message does not name the file: " << msg;
    // The in-memory parser must agree with the file loader.
    try {
      (void)SafetensorsFile::parse(bytes, p.string());
      ADD_FAILURE() << "parse() accepted what load() rejected";
    } catch (const kiln::ArtifactError& e2) {
      EXPECT_EQ(msg, std::string(e2.what()));
    }
    return msg;
  }
  ADD_FAILURE() << "load() accepted a corrupt file";
  return {};
}

#define EXPECT_HAS(msg, needle) EXPECT_NE((msg).find(needle), std::string::npos) << (msg)

// The tensors of tests/golden/make_safetensors_golden.py SAMPLE, in the same order.
std::vector<std::pair<std::string, TensorData>> sample() {
  return {
      {"embed.weight", make<float>(DType::kF32, {2, 3}, {0.5f, -1.25f, 3.0f, 0.0f, 100.0f, -0.0625f})},
      {"head.bias", make<double>(DType::kF64, {2}, {1.5, -2.25})},
      {"half", make<std::uint16_t>(DType::kF16, {3}, {0x3C00, 0xC000, 0x3800})},
      {"brain", make<std::uint16_t>(DType::kBF16, {2}, {0x3F80, 0xC060})},
      {"ids", make<std::int64_t>(DType::kI64, {3}, {-1, 0, std::int64_t{1} << 40})},
      {"i32", make<std::int32_t>(DType::kI32, {2, 2}, {1, -2, 3, -4})},
      {"i16", make<std::int16_t>(DType::kI16, {2}, {-300, 300})},
      {"i8", make<std::int8_t>(DType::kI8, {3}, {-128, 0, 127})},
      {"u8", make<std::uint8_t>(DType::kU8, {2}, {0, 255})},
      {"mask", make<std::uint8_t>(DType::kBool, {3}, {1, 0, 1})},
      {"scale", make<float>(DType::kF32, {}, {2.5f})},
      {"empty", make<float>(DType::kF32, {0, 4}, {})},
  };
}
const std::map<std::string, std::string> kSampleMetadata{{"format", "pt"}, {"kiln.note", "h\xc3\xa9llo"}};

std::vector<std::pair<std::string, TensorView>> views(
    const std::vector<std::pair<std::string, TensorData>>& ts) {
  std::vector<std::pair<std::string, TensorView>> out;
  for (const auto& [name, t] : ts) out.emplace_back(name, t.view());
  return out;
}

void expect_sample(const SafetensorsFile& f) {
  auto expected = sample();
  ASSERT_EQ(f.size(), expected.size());
  for (const auto& [name, t] : expected) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f.has(name));
    const TensorView& v = f.get(name);
    EXPECT_EQ(v.dtype, t.dtype);
    EXPECT_EQ(v.shape, t.shape);
    ASSERT_EQ(v.nbytes, t.bytes.size());
    EXPECT_EQ(0, v.nbytes == 0 ? 0 : std::memcmp(v.data, t.bytes.data(), v.nbytes));
  }
  EXPECT_EQ(values_of<float>(f.get("embed.weight")),
            (std::vector<float>{0.5f, -1.25f, 3.0f, 0.0f, 100.0f, -0.0625f}));
  EXPECT_EQ(values_of<std::int64_t>(f.get("ids"))[2], std::int64_t{1} << 40);
  EXPECT_EQ(values_of<float>(f.get("scale")), std::vector<float>{2.5f});
  EXPECT_EQ(f.get("scale").numel(), 1);
  EXPECT_EQ(f.get("empty").numel(), 0);
  EXPECT_EQ(f.metadata(), kSampleMetadata);
}

}  // namespace

TEST(Safetensors, DTypeNamesSizesAndParsing) {
  using kiln::core::dtype_name;
  using kiln::core::dtype_size;
  using kiln::core::parse_dtype;
  for (DType d : {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI64, DType::kI32, DType::kI16,
                  DType::kI8, DType::kU8, DType::kBool}) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_size(DType::kF64), 8u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kBool), 1u);
  EXPECT_EQ(dtype_name(DType::kBool), "BOOL");
  EXPECT_FALSE(parse_dtype("f32").has_value());
  EXPECT_FALSE(parse_dtype("F8_E4M3").has_value());
  EXPECT_EQ(kiln::core::shape_numel({}), 1);
  EXPECT_EQ(kiln::core::shape_numel({3, 0, 5}), 0);
  EXPECT_THROW((void)kiln::core::shape_numel({-1}), kiln::Error);
  EXPECT_THROW((void)kiln::core::shape_numel({1LL << 32, 1LL << 32}), kiln::Error);
}

TEST(Safetensors, RoundTripsEveryDTypeScalarAndEmptyTensor) {
  fs::path p = fresh_dir("roundtrip") / "sub" / "model.safetensors";
  auto tensors = sample();
  kiln::core::save_safetensors(p, views(tensors), kSampleMetadata);
  SafetensorsFile f = SafetensorsFile::load(p);
  expect_sample(f);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"brain", "embed.weight", "empty", "half", "head.bias", "i16",
                                                 "i32", "i8", "ids", "mask", "scale", "u8"}));
  for (const auto& name : f.names()) {
    const TensorView& v = f.get(name);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data) % kiln::core::dtype_size(v.dtype), 0u) << name;
  }
  // Copies share the buffer; views outlive the original object.
  SafetensorsFile copy = f;
  f = SafetensorsFile::parse(image("{}"));
  expect_sample(copy);
  EXPECT_EQ(f.size(), 0u);
}

TEST(Safetensors, MetadataRoundTripsAndIsOmittedWhenEmpty) {
  fs::path dir = fresh_dir("metadata");
  TensorData t = make<float>(DType::kF32, {2}, {1.0f, 2.0f});
  std::map<std::string, std::string> md{{"a", ""}, {"json", "{\"x\": [1, 2]}"}, {"unicode", "\xe2\x82\xac"}};
  kiln::core::save_safetensors(dir / "m.safetensors", {{"w", t.view()}}, md);
  EXPECT_EQ(SafetensorsFile::load(dir / "m.safetensors").metadata(), md);

  kiln::core::save_safetensors(dir / "n.safetensors", {{"w", t.view()}});
  EXPECT_TRUE(SafetensorsFile::load(dir / "n.safetensors").metadata().empty());
  EXPECT_EQ(slurp(dir / "n.safetensors").find("__metadata__"), std::string::npos);
}

TEST(Safetensors, WriterLayoutIsPaddedContiguousAndAlignedByElementSize) {
  fs::path p = fresh_dir("layout") / "w.safetensors";
  TensorData a = make<std::int8_t>(DType::kI8, {3}, {1, 2, 3});
  TensorData b = make<double>(DType::kF64, {1}, {4.0});
  kiln::core::save_safetensors(p, {{"a", a.view()}, {"b", b.view()}}, {{"k", "v"}});
  std::string header = R"({"__metadata__":{"k":"v"},"b":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                       R"("a":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data(11, '\0');
  std::memcpy(data.data(), b.bytes.data(), 8);
  std::memcpy(data.data() + 8, a.bytes.data(), 3);
  EXPECT_EQ(slurp(p), image(header, data));
}

TEST(Safetensors, SaveReplacesExistingFileAndLeavesNoTemporaries) {
  fs::path dir = fresh_dir("replace");
  spit(dir / "w.safetensors", "old contents");
  TensorData t = make<std::int32_t>(DType::kI32, {1}, {7});
  kiln::core::save_safetensors(dir / "w.safetensors", {{"t", t.view()}});
  EXPECT_EQ(values_of<std::int32_t>(SafetensorsFile::load(dir / "w.safetensors").get("t")),
            std::vector<int32_t>{7});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(Safetensors, SaveRejectsInconsistentInput) {
  fs::path dir = fresh_dir("badsave");
  TensorData t = make<float>(DType::kF32, {2}, {1.0f, 2.0f});
  TensorView short_view{DType::kF32, {3}, t.bytes.data(), t.bytes.size()};
  auto message = [&](const std::vector<std::pair<std::string, TensorView>>& ts) {
    try {
      kiln::core::save_safetensors(dir / "x.safetensors", ts);
    } catch (const kiln::ArtifactError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_HAS(message({{"w", short_view}}),
             "tensor 'w': 8 bytes given, but dtype F32 with 3 elements needs 12");
  EXPECT_HAS(message({{"w", t.view()}, {"w", t.view()}}), "tensor 'w': the name appears more than once");
  EXPECT_HAS(message({{"__metadata__", t.view()}}), "reserved");
  EXPECT_HAS(message({{"", t.view()}}), "the name is empty");
  EXPECT_HAS(message({{"w", TensorView{DType::kF32, {-2}, nullptr, 0}}}), "negative dimension -2");
  EXPECT_HAS(message({{"w", TensorView{DType::kF32, {2}, nullptr, 8}}}), "data is null");
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST(Safetensors, ReadsReferenceGolden) {
  expect_sample(SafetensorsFile::load(fs::path(KILN_GOLDEN_DIR) / "safetensors" / "reference.safetensors"));
}

TEST(Safetensors, ReadsForeignLayoutUnpaddedAndUnaligned) {
  expect_sample(
      SafetensorsFile::load(fs::path(KILN_GOLDEN_DIR) / "safetensors" / "foreign_layout.safetensors"));
}

TEST(Safetensors, WriterMatchesReferenceGoldenByteForByte) {
  fs::path p = fresh_dir("golden") / "model.safetensors";
  auto tensors = sample();
  kiln::core::save_safetensors(p, views(tensors), kSampleMetadata);
  EXPECT_EQ(slurp(p), slurp(fs::path(KILN_GOLDEN_DIR) / "safetensors" / "reference.safetensors"));
}

TEST(Safetensors, PythonSpecCheckerAcceptsKilnOutput) {
  KILN_REQUIRE_TOOL(fs::exists("/usr/bin/python3"), "/usr/bin/python3 (the spec checker)", "python3");
  fs::path p = fresh_dir("pycheck") / "model.safetensors";
  auto tensors = sample();
  kiln::core::save_safetensors(p, views(tensors), kSampleMetadata);
  std::string cmd = "/usr/bin/python3 '" + std::string(KILN_GOLDEN_DIR) +
                    "/make_safetensors_golden.py' check '" + p.string() + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(Safetensors, MissingFileIsAnIoError) {
  EXPECT_THROW((void)SafetensorsFile::load(fresh_dir("missing") / "nope.safetensors"), kiln::IoError);
}

TEST(Safetensors, GetUnknownTensorNamesItAndListsAvailable) {
  TensorData t = make<float>(DType::kF32, {1}, {1.0f});
  fs::path p = fresh_dir("unknown") / "w.safetensors";
  kiln::core::save_safetensors(p, {{"encoder.weight", t.view()}, {"encoder.bias", t.view()}});
  SafetensorsFile f = SafetensorsFile::load(p);
  try {
    (void)f.get("decoder.weight");
    FAIL() << "no error";
  } catch (const kiln::ArtifactError& e) {
    EXPECT_HAS(std::string(e.what()), p.string() +
                                          ": no tensor named 'decoder.weight'; the file has 2 tensor(s): "
                                          "'encoder.bias', 'encoder.weight'; check that the model spec");
  }
}

// ---- corrupt files: one test per validation path ----

const std::string kF32x2 = std::string(8, '\0');
std::string entry(const std::string& body) { return R"({"w":)" + body + "}"; }

TEST(Safetensors, RejectsFileShorterThanEightBytes) {
  EXPECT_HAS(load_error("abcde"),
             "the file is truncated: expected at least 8 bytes (the header size), got 5");
}

TEST(Safetensors, RejectsAbsurdHeaderSize) {
  EXPECT_HAS(
      load_error(le64(1ULL << 40) + "{}"),
      "header size 1099511627776 bytes exceeds the 100000000-byte limit; this is not a safetensors file");
}

TEST(Safetensors, RejectsHeaderSizeBeyondFile) {
  EXPECT_HAS(load_error(le64(100) + "{}"),
             "header size 100 bytes is larger than the 2 bytes that follow it; the file is truncated: "
             "expected at least 108 bytes, got 10");
}

TEST(Safetensors, RejectsHeaderNotUtf8) {
  EXPECT_HAS(load_error(image("{\"w\xff\":{}}")), "header is not valid UTF-8 (byte 3 of the header)");
}

TEST(Safetensors, RejectsHeaderNotJson) {
  std::string msg = load_error(image("{\"w\": [1, 2}"));
  EXPECT_HAS(msg, "header is not valid JSON: ");
  EXPECT_HAS(msg, "re-export the model");
}

TEST(Safetensors, RejectsHeaderNotObject) {
  EXPECT_HAS(load_error(image("[1, 2]")), "header is a JSON array, expected an object mapping tensor names");
}

TEST(Safetensors, RejectsEntryNotObject) {
  EXPECT_HAS(load_error(image(entry("3"))), "tensor 'w': header entry is a JSON number, expected an object");
}

TEST(Safetensors, RejectsMissingDtype) {
  EXPECT_HAS(load_error(image(entry(R"({"shape":[2],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': missing \"dtype\" (expected a string)");
}

TEST(Safetensors, RejectsMissingShape) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': missing \"shape\"");
}

TEST(Safetensors, RejectsMissingDataOffsets) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2]})"), kF32x2)),
             "tensor 'w': missing \"data_offsets\" (expected [begin, end])");
}

TEST(Safetensors, RejectsDtypeNotString) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': \"dtype\" is a JSON number, expected a string");
}

TEST(Safetensors, RejectsShapeNotArray) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': \"shape\" is a JSON string, expected an array of non-negative integers");
}

TEST(Safetensors, RejectsNonIntegerDimension) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': \"shape\" [2.0] has a non-integer dimension 2.0");
}

TEST(Safetensors, RejectsMalformedDataOffsets) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[8]})"), kF32x2)),
             "tensor 'w': \"data_offsets\" is [8], expected [begin, end] with non-negative integers");
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[-1,7]})"), kF32x2)),
             "\"data_offsets\" is [-1,7]");
}

TEST(Safetensors, RejectsUnknownDtype) {
  EXPECT_HAS(
      load_error(image(entry(R"({"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]})"), kF32x2)),
      "tensor 'w': unknown dtype \"F8_E4M3\"; supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL; "
      "convert the tensor");
}

TEST(Safetensors, RejectsNegativeDimension) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': \"shape\" [-2] has a dimension out of range -2");
}

TEST(Safetensors, RejectsShapeProductOverflow) {
  EXPECT_HAS(load_error(image(
                 entry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': \"shape\" [4294967296,4294967296] has more than 2^63-1 elements");
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})"),
                              kF32x2)),
             "is too large to address in bytes");
}

TEST(Safetensors, RejectsBeginAfterEnd) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), kF32x2)),
             "tensor 'w': \"data_offsets\" [8,0] has begin > end");
}

TEST(Safetensors, RejectsSizeMismatch) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), kF32x2)),
             "tensor 'w': size mismatch: data_offsets [0,8] span 8 bytes, but dtype F32 with shape [3] needs "
             "12 bytes");
}

TEST(Safetensors, RejectsOutOfBoundsAsTruncated) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  std::string msg = load_error(image(header, std::string(6, '\0')));
  EXPECT_HAS(msg,
             "tensor 'b': data_offsets [4, 12] are out of bounds of the 6-byte data buffer; the file is "
             "truncated: expected " +
                 std::to_string(8 + header.size() + 12) + " bytes, got " +
                 std::to_string(8 + header.size() + 6));
}

TEST(Safetensors, RejectsOverlappingTensors) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  EXPECT_HAS(load_error(image(header, kF32x2)), "tensor 'b': data [4, 8) overlaps tensor 'a' [0, 8)");
}

TEST(Safetensors, RejectsGapInDataBuffer) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  EXPECT_HAS(load_error(image(header, std::string(12, '\0'))),
             "tensor 'b': gap of 4 unindexed bytes before its data at offset 8 (the spec forbids holes");
}

TEST(Safetensors, RejectsTrailingBytes) {
  EXPECT_HAS(load_error(image(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), kF32x2 + "xyz")),
             "3 trailing bytes after the last tensor (data ends at 8 of a 11-byte buffer)");
}

TEST(Safetensors, RejectsDuplicateTensorNames) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  EXPECT_HAS(load_error(image(header, kF32x2)), "duplicate tensor name 'w' in the header");
}

TEST(Safetensors, RejectsMetadataNotObject) {
  EXPECT_HAS(load_error(image(R"({"__metadata__":["a"]})")),
             "\"__metadata__\" is a JSON array, expected an object of string values");
}

TEST(Safetensors, RejectsNonStringMetadataValue) {
  EXPECT_HAS(load_error(image(R"({"__metadata__":{"epochs":3}})")),
             "\"__metadata__\" key 'epochs' has a JSON number value 3, expected a string");
}
