#include "kiln/core/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/utf8.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is used in place: big-endian hosts would need "
              "byte swapping on load and save, which is not implemented");
#endif

namespace fs = std::filesystem;
using nlohmann::json;

namespace kiln::core {
namespace {

/// Headers larger than this are rejected as corrupt (the reference implementation's limit).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::size_t kBufferAlignment = 64;
constexpr const char* kReexport =
    "; the file is corrupt or was not written by a safetensors writer: "
    "re-export the model";

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr std::array<DTypeInfo, 10> kDTypes{{
    {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

const DTypeInfo& info(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d;
  }
  throw Error("invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : kDTypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw ArtifactError(source + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& source, const std::string& name, const std::string& what) {
  fail(source, "tensor '" + name + "': " + what + kReexport);
}

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// One tensor's entry in the header, validated on its own.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

const json& require_field(const std::string& source, const std::string& name, const json& entry,
                          const char* field, const char* expected) {
  auto it = entry.find(field);
  if (it == entry.end()) {
    fail_tensor(source, name, std::string("missing \"") + field + "\" (expected " + expected + ")");
  }
  return *it;
}

Entry parse_entry(const std::string& source, const std::string& name, const json& j) {
  if (!j.is_object()) {
    fail_tensor(source, name,
                std::string("header entry is a JSON ") + j.type_name() +
                    ", expected an object with \"dtype\", \"shape\", \"data_offsets\"");
  }
  Entry e;
  e.name = name;

  const json& dt = require_field(source, name, j, "dtype", "a string");
  if (!dt.is_string()) {
    fail_tensor(source, name, std::string("\"dtype\" is a JSON ") + dt.type_name() + ", expected a string");
  }
  auto dtype = parse_dtype(dt.get_ref<const std::string&>());
  if (!dtype) {
    fail(source, "tensor '" + name + "': unknown dtype \"" + dt.get<std::string>() + "\"; supported: " +
                     supported_dtypes() + "; convert the tensor to one of these and re-export the model");
  }
  e.dtype = *dtype;

  const json& shape = require_field(source, name, j, "shape", "an array of integers");
  if (!shape.is_array()) {
    fail_tensor(source, name,
                std::string("\"shape\" is a JSON ") + shape.type_name() +
                    ", expected an array of non-negative integers");
  }
  for (const json& d : shape) {
    if (!d.is_number_integer()) {
      fail_tensor(source, name, "\"shape\" " + shape.dump() + " has a non-integer dimension " + d.dump());
    }
    if (d.is_number_unsigned() ? d.get<std::uint64_t>() > INT64_MAX : d.get<std::int64_t>() < 0) {
      fail_tensor(source, name,
                  "\"shape\" " + shape.dump() + " has a dimension out of range " + d.dump() +
                      " (expected 0 <= dim <= 2^63-1)");
    }
    e.shape.push_back(d.get<std::int64_t>());
  }

  const json& off = require_field(source, name, j, "data_offsets", "[begin, end]");
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    fail_tensor(source, name,
                "\"data_offsets\" is " + off.dump() + ", expected [begin, end] with non-negative integers");
  }
  e.begin = off[0].get<std::uint64_t>();
  e.end = off[1].get<std::uint64_t>();
  if (e.begin > e.end) {
    fail_tensor(source, name, "\"data_offsets\" " + off.dump() + " has begin > end");
  }

  std::int64_t numel = 0;
  try {
    numel = shape_numel(e.shape);
  } catch (const Error&) {
    fail_tensor(source, name, "\"shape\" " + shape.dump() + " has more than 2^63-1 elements");
  }
  const std::uint64_t esize = dtype_size(e.dtype);
  if (static_cast<std::uint64_t>(numel) > UINT64_MAX / esize) {
    fail_tensor(source, name, "\"shape\" " + shape.dump() + " is too large to address in bytes");
  }
  const std::uint64_t expected = static_cast<std::uint64_t>(numel) * esize;
  if (e.end - e.begin != expected) {
    fail_tensor(source, name,
                "size mismatch: data_offsets " + off.dump() + " span " + std::to_string(e.end - e.begin) +
                    " bytes, but dtype " + std::string(dtype_name(e.dtype)) + " with shape " + shape.dump() +
                    " needs " + std::to_string(expected) + " bytes");
  }
  return e;
}

/// Parses and validates the whole header against a data buffer of `buffer_size` bytes, so nothing
/// of the buffer needs to be read before the file is known to be well-formed.
Header parse_header(const std::string& source, std::string_view text, std::uint64_t header_size,
                    std::uint64_t file_size) {
  const std::uint64_t buffer_size = file_size - 8 - header_size;
  if (std::size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    fail(source, "header is not valid UTF-8 (byte " + std::to_string(bad) + " of the header)" + kReexport);
  }

  // Duplicate top-level keys are legal JSON but ambiguous here; the parser would keep the last.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    fail(source, "header is not valid JSON: " + what + kReexport);
  }
  if (!root.is_object()) {
    fail(source, std::string("header is a JSON ") + root.type_name() +
                     ", expected an object mapping tensor names to entries" + kReexport);
  }
  if (!duplicate.empty()) {
    fail(source, "duplicate tensor name '" + duplicate + "' in the header" + kReexport);
  }

  Header h;
  for (const auto& [name, value] : root.items()) {
    if (name != "__metadata__") {
      h.entries.push_back(parse_entry(source, name, value));
      continue;
    }
    if (!value.is_object()) {
      fail(source, std::string("\"__metadata__\" is a JSON ") + value.type_name() +
                       ", expected an object of string values" + kReexport);
    }
    for (const auto& [key, v] : value.items()) {
      if (!v.is_string()) {
        fail(source, "\"__metadata__\" key '" + key + "' has a JSON " + v.type_name() + " value " + v.dump() +
                         ", expected a string" + kReexport);
      }
      h.metadata[key] = v.get<std::string>();
    }
  }

  // Bounds: name the tensor reaching furthest, which is what a truncated file breaks first.
  auto furthest = std::max_element(h.entries.begin(), h.entries.end(),
                                   [](const Entry& a, const Entry& b) { return a.end < b.end; });
  if (furthest != h.entries.end() && furthest->end > buffer_size) {
    fail(source, "tensor '" + furthest->name + "': data_offsets [" + std::to_string(furthest->begin) + ", " +
                     std::to_string(furthest->end) + "] are out of bounds of the " +
                     std::to_string(buffer_size) + "-byte data buffer; the file is truncated: expected " +
                     std::to_string(8 + header_size + furthest->end) + " bytes, got " +
                     std::to_string(file_size) + "; copy the file again or re-export the model");
  }

  // Coverage: the spec requires the buffer to be entirely indexed, without holes or overlaps.
  std::vector<const Entry*> order;
  for (const Entry& e : h.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    if (e->begin < covered) {
      fail(source, "tensor '" + e->name + "': data [" + std::to_string(e->begin) + ", " +
                       std::to_string(e->end) + ") overlaps tensor '" + prev->name + "' [" +
                       std::to_string(prev->begin) + ", " + std::to_string(prev->end) + ")" + kReexport);
    }
    if (e->begin > covered) {
      fail(source, "tensor '" + e->name + "': gap of " + std::to_string(e->begin - covered) +
                       " unindexed bytes before its data at offset " + std::to_string(e->begin) +
                       " (the spec forbids holes in the data buffer)" + kReexport);
    }
    covered = e->end;
    if (e->end > e->begin || prev == nullptr) prev = e;
  }
  if (covered < buffer_size) {
    fail(source, std::to_string(buffer_size - covered) +
                     " trailing bytes after the last tensor (data ends at " + std::to_string(covered) +
                     " of a " + std::to_string(buffer_size) + "-byte buffer)" + kReexport);
  }
  return h;
}

std::map<std::string, TensorView> make_views(std::vector<Entry>& entries, const std::byte* buffer) {
  std::map<std::string, TensorView> out;
  for (Entry& e : entries) {
    out[e.name] =
        TensorView{e.dtype, std::move(e.shape), buffer + e.begin, static_cast<std::size_t>(e.end - e.begin)};
  }
  return out;
}

std::shared_ptr<const std::byte> allocate_buffer(std::size_t n) {
  auto* p = static_cast<std::byte*>(
      ::operator new (std::max<std::size_t>(n, 1), std::align_val_t{kBufferAlignment}));
  return std::shared_ptr<const std::byte>(p, [](const std::byte* q) {
    ::operator delete (const_cast<std::byte*>(q), std::align_val_t{kBufferAlignment});
  });
}

std::uint64_t checked_header_size(const std::string& source, const unsigned char* prefix,
                                  std::uint64_t file_size) {
  const std::uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderBytes) {
    fail(source,
         "header size " + std::to_string(n) + " bytes exceeds the " + std::to_string(kMaxHeaderBytes) +
             "-byte limit; this is not a safetensors file or its first 8 bytes are corrupt" + kReexport);
  }
  if (n > file_size - 8) {
    fail(source,
         "header size " + std::to_string(n) + " bytes is larger than the " + std::to_string(file_size - 8) +
             " bytes that follow it; the file is truncated: expected at least " + std::to_string(8 + n) +
             " bytes, got " + std::to_string(file_size) + "; copy the file again or re-export the model");
  }
  return n;
}

[[noreturn]] void fail_too_short(const std::string& source, std::uint64_t file_size) {
  fail(source, "the file is truncated: expected at least 8 bytes (the header size), got " +
                   std::to_string(file_size) + "; copy the file again or re-export the model");
}

}  // namespace

std::size_t dtype_size(DType dtype) { return info(dtype).size; }

std::string_view dtype_name(DType dtype) { return info(dtype).name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  return std::nullopt;
}

std::int64_t shape_numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension " + std::to_string(d) + " in tensor shape");
    if (d != 0 && n > INT64_MAX / d) throw Error("tensor shape has more than 2^63-1 elements");
    n *= d;
  }
  return n;
}

SafetensorsFile SafetensorsFile::load(const fs::path& path) {
  const std::string source = path.string();
  require_regular_file(path, "safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(source + ": cannot open: " + std::strerror(errno) + "; check its permissions");
  std::error_code ec;
  const std::uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw IoError(source + ": cannot stat: " + ec.message());
  if (file_size < 8) fail_too_short(source, file_size);

  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  const std::uint64_t header_size = checked_header_size(source, prefix, file_size);
  std::string header(header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_size));
  Header h = parse_header(source, header, header_size, file_size);

  const std::uint64_t buffer_size = file_size - 8 - header_size;
  SafetensorsFile f;
  f.source_ = source;
  f.buffer_ = allocate_buffer(buffer_size);
  in.read(reinterpret_cast<char*>(const_cast<std::byte*>(f.buffer_.get())),
          static_cast<std::streamsize>(buffer_size));
  if (!in || static_cast<std::uint64_t>(in.gcount()) != buffer_size) {
    throw IoError(source +
                  ": read failed or the file shrank while reading; check that nothing else writes it");
  }
  f.tensors_ = make_views(h.entries, f.buffer_.get());
  f.metadata_ = std::move(h.metadata);
  return f;
}

SafetensorsFile SafetensorsFile::parse(std::string_view file_bytes, const std::string& source) {
  const std::uint64_t file_size = file_bytes.size();
  if (file_size < 8) fail_too_short(source, file_size);
  const std::uint64_t header_size =
      checked_header_size(source, reinterpret_cast<const unsigned char*>(file_bytes.data()), file_size);
  Header h = parse_header(source, file_bytes.substr(8, header_size), header_size, file_size);

  const std::uint64_t buffer_size = file_size - 8 - header_size;
  SafetensorsFile f;
  f.source_ = source;
  f.buffer_ = allocate_buffer(buffer_size);
  std::memcpy(const_cast<std::byte*>(f.buffer_.get()), file_bytes.data() + 8 + header_size, buffer_size);
  f.tensors_ = make_views(h.entries, f.buffer_.get());
  f.metadata_ = std::move(h.metadata);
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

const TensorView& SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  constexpr std::size_t kShown = 8;
  std::string available;
  std::size_t shown = 0;
  for (const auto& [n, view] : tensors_) {
    if (shown == kShown) {
      available += ", ...";
      break;
    }
    available += (shown++ ? ", '" : "'") + n + "'";
  }
  throw ArtifactError(source_ + ": no tensor named '" + name + "'; the file has " +
                      std::to_string(tensors_.size()) + " tensor(s)" +
                      (tensors_.empty() ? std::string() : ": " + available) +
                      "; check that the model spec matches these weights or re-export the model");
}

void save_safetensors(const fs::path& path, const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  AtomicFile out(path);
  write_safetensors(out, tensors, metadata);
  out.commit();
}

void write_safetensors(AtomicFile& out, const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string target = out.target().string();
  auto bad = [&](const std::string& name, const std::string& what) {
    throw ArtifactError(target + ": cannot write tensor '" + name + "': " + what);
  };
  std::set<std::string> seen;
  for (const auto& [name, view] : tensors) {
    if (name.empty()) bad(name, "the name is empty");
    if (name == "__metadata__") bad(name, "the name is reserved for the metadata object");
    if (find_invalid_utf8(name) != std::string_view::npos) bad(name, "the name is not valid UTF-8");
    if (!seen.insert(name).second) bad(name, "the name appears more than once");
    std::int64_t numel = 0;
    try {
      numel = shape_numel(view.shape);
    } catch (const Error& e) {
      bad(name, e.what());
    }
    const std::size_t esize = dtype_size(view.dtype);
    if (static_cast<std::uint64_t>(numel) > SIZE_MAX / esize ||
        view.nbytes != static_cast<std::size_t>(numel) * esize) {
      bad(name, std::to_string(view.nbytes) + " bytes given, but dtype " +
                    std::string(dtype_name(view.dtype)) + " with " + std::to_string(numel) +
                    " elements needs " + std::to_string(static_cast<std::uint64_t>(numel) * esize));
    }
    if (view.data == nullptr && view.nbytes > 0) bad(name, "data is null");
  }
  for (const auto& [key, value] : metadata) {
    if (find_invalid_utf8(key) != std::string_view::npos ||
        find_invalid_utf8(value) != std::string_view::npos) {
      throw ArtifactError(target + ": cannot write metadata key '" + replace_invalid_utf8(key) +
                          "': key and value must be valid UTF-8");
    }
  }

  std::vector<std::size_t> order(tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return dtype_size(tensors[a].second.dtype) > dtype_size(tensors[b].second.dtype);
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (std::size_t i : order) {
    const auto& [name, view] = tensors[i];
    header[name] = {{"dtype", dtype_name(view.dtype)},
                    {"shape", view.shape},
                    {"data_offsets", {offset, offset + view.nbytes}}};
    offset += view.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  out.write(prefix, 8);
  out.write(text.data(), text.size());
  for (std::size_t i : order) out.write(tensors[i].second.data, tensors[i].second.nbytes);
}

}  // namespace kiln::core
