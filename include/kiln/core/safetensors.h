// Reader and writer for safetensors files (the format of model weights in a Kiln artifact).
//
// On disk: an 8-byte little-endian u64 N; N bytes of UTF-8 JSON header mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} plus an optional "__metadata__" object of string
// values; then the data buffer. Offsets are relative to the start of the buffer; tensor data is
// row-major and little-endian. This code deals in raw bytes, dtypes and shapes only (no LibTorch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::core {

class AtomicFile;

/// Element type of a tensor. The names returned by dtype_name() are the on-disk contract; the
/// numeric values are not persisted, but never renumber them anyway.
enum class DType : std::uint8_t {
  kF32 = 0,
  kF64 = 1,
  kF16 = 2,
  kBF16 = 3,
  kI64 = 4,
  kI32 = 5,
  kI16 = 6,
  kI8 = 7,
  kU8 = 8,
  kBool = 9,
};

/// Bytes per element: 8 for F64/I64, 4 for F32/I32, 2 for F16/BF16/I16, 1 for I8/U8/BOOL.
[[nodiscard]] std::size_t dtype_size(DType dtype);
/// The safetensors spelling: "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
[[nodiscard]] std::string_view dtype_name(DType dtype);
/// Inverse of dtype_name (case-sensitive); std::nullopt for any other string.
[[nodiscard]] std::optional<DType> parse_dtype(std::string_view name);

/// Number of elements of `shape` (1 for a 0-d scalar, 0 if any dimension is 0). Throws kiln::Error
/// if a dimension is negative or the product overflows int64.
[[nodiscard]] std::int64_t shape_numel(const std::vector<std::int64_t>& shape);

/// A non-owning view of one tensor's bytes. `data` may be null only when `nbytes` is 0.
/// Invariant (checked on load and on save): nbytes == shape_numel(shape) * dtype_size(dtype).
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  const std::byte* data = nullptr;
  std::size_t nbytes = 0;

  [[nodiscard]] std::int64_t numel() const { return shape_numel(shape); }
};

/// A tensor that owns its bytes; view() stays valid while this object is alive and unmodified.
struct TensorData {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;

  [[nodiscard]] TensorView view() const { return {dtype, shape, bytes.data(), bytes.size()}; }
};

/// A loaded, fully validated safetensors file. The data buffer is read once and kept alive inside
/// the object (shared between copies, never modified), so views returned by get() stay valid for
/// the lifetime of any copy. The buffer starts 64-byte aligned: a tensor's data is aligned to its
/// element size whenever its begin offset is (always so in files written by save_safetensors).
/// Thread-safe after construction (all members are const).
class SafetensorsFile {
 public:
  /// Reads and validates `path`. Throws IoError if the file cannot be opened or read, and
  /// ArtifactError naming the file (and the tensor, where one is involved) for any format problem:
  /// truncation, bad header, unknown dtype, shape/size mismatch, overlaps, gaps, trailing bytes,
  /// duplicate names, non-string metadata.
  [[nodiscard]] static SafetensorsFile load(const std::filesystem::path& path);
  /// Same validation over an in-memory file image; `source` names it in error messages.
  [[nodiscard]] static SafetensorsFile parse(std::string_view file_bytes,
                                             const std::string& source = "<memory>");

  /// Tensor names, sorted.
  [[nodiscard]] std::vector<std::string> names() const;
  [[nodiscard]] bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  [[nodiscard]] std::size_t size() const { return tensors_.size(); }
  /// Throws ArtifactError naming the file, the missing tensor and a few available names.
  [[nodiscard]] const TensorView& get(const std::string& name) const;
  /// The "__metadata__" object (empty if absent).
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// The file this was loaded from (or the `source` given to parse()).
  [[nodiscard]] const std::string& source() const { return source_; }

 private:
  SafetensorsFile() = default;

  std::string source_;
  std::shared_ptr<const std::byte> buffer_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Writes `tensors` and `metadata` to `path` atomically (temporary sibling, fsync, rename; an
/// existing file is replaced only once the new one is complete). Tensor data is streamed, not
/// copied into one buffer.
///
/// Layout: the header lists "__metadata__" first (omitted when `metadata` is empty), then the
/// tensors in data order, compact JSON padded with spaces so that 8 + N is a multiple of 8. Data
/// is laid out contiguously, ordered by decreasing element size and, among equal sizes, in the
/// order given; this keeps every tensor aligned to its element size, as the reference
/// implementation does. The output is a deterministic function of the arguments.
///
/// Throws ArtifactError naming the tensor if a name is empty, duplicated, "__metadata__" or not
/// UTF-8, if nbytes disagrees with dtype and shape, or if data is null with nbytes > 0; throws
/// ArtifactError if a metadata key or value is not UTF-8; IoError if the file cannot be written.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// The same bytes as save_safetensors, streamed into `out` (the caller commits it), e.g. a file of
/// an AtomicDirectory. Throws as save_safetensors does.
void write_safetensors(AtomicFile& out, const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln::core
