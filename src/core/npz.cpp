#include "kiln/core/npz.h"

#include <array>
#include <cstring>
#include <set>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              ".npz data is written from memory as little-endian: big-endian hosts would need byte swapping");
#endif

namespace kiln::core {
namespace {

/// Slice-by-8 tables: kCrc[k][b] is the CRC contribution of byte b followed by k zero bytes.
struct CrcTables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  CrcTables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
      for (std::size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    }
  }
};
const CrcTables kCrc;

constexpr std::uint32_t k32 = 0xFFFFFFFFu;
constexpr std::uint16_t kVersion = 20;    // zip 2.0: stored entries
constexpr std::uint16_t kVersion64 = 45;  // zip 4.5: zip64 records
constexpr std::uint16_t kMadeOnUnix = 3 << 8;
constexpr std::uint16_t kDate1980 = (1 << 5) | 1;  // 1980-01-01 00:00: the same bytes on every run
constexpr std::uint32_t kRegularFile0644 = 0100644u << 16;

void put16(std::string& s, std::uint16_t v) {
  s += static_cast<char>(v & 0xFF);
  s += static_cast<char>(v >> 8);
}
void put32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t low32(std::uint64_t v, bool zip64) { return zip64 ? k32 : static_cast<std::uint32_t>(v); }

struct Entry {
  std::string name;    // NAME.npy
  std::string header;  // the .npy header
  const NpyArray* array = nullptr;
  std::uint64_t size = 0;  // header + data
  std::uint64_t offset = 0;
  std::uint32_t crc = 0;
  bool zip64 = false;
};

/// The fields a local header and a central directory record share, from "version needed" to the
/// extra field's length: stored (no compression), no flags, the fixed 1980 date.
void put_entry_fields(std::string& s, const Entry& e, std::uint16_t version, std::uint16_t extra_length) {
  put16(s, version);
  put16(s, 0);  // flags
  put16(s, 0);  // stored
  put16(s, 0);  // time
  put16(s, kDate1980);
  put32(s, e.crc);
  put32(s, low32(e.size, e.zip64));  // compressed
  put32(s, low32(e.size, e.zip64));  // uncompressed
  put16(s, static_cast<std::uint16_t>(e.name.size()));
  put16(s, extra_length);
}

}  // namespace

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto& t = kCrc.t;
  std::uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint32_t lo = 0;
    std::uint32_t hi = 0;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
        t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) c = t[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return ~c;
}

std::string npy_header(const NpyArray& a) {
  // Python's repr of the shape tuple: (), (n,), (a, b).
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i) {
    if (i > 0) shape += ", ";
    shape += std::to_string(a.shape[i]);
  }
  if (a.shape.size() == 1) shape += ",";
  shape += ")";
  std::string dict = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  constexpr std::size_t kPrefix = 10;  // magic, version, u16 length
  std::size_t total = kPrefix + dict.size() + 1;
  total = (total + 63) / 64 * 64;
  const std::size_t length = total - kPrefix;
  if (length > 0xFFFF) throw Error("npz: the .npy header of '" + a.name + "' is longer than 65535 bytes");
  dict.resize(length - 1, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  put16(h, static_cast<std::uint16_t>(length));
  return h + dict;
}

void write_npz(AtomicFile& out, const std::vector<NpyArray>& arrays, bool force_zip64) {
  std::vector<Entry> entries(arrays.size());
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const NpyArray& a = arrays[i];
    if (a.name.empty()) throw Error("npz: an array has an empty name");
    if (!names.insert(a.name).second) throw Error("npz: two arrays are named '" + a.name + "'");
    if (a.nbytes > 0 && a.data == nullptr) throw Error("npz: array '" + a.name + "' has bytes but no data");
    Entry& e = entries[i];
    e.name = a.name + ".npy";
    e.header = npy_header(a);
    e.array = &a;
    e.size = e.header.size() + a.nbytes;
    e.offset = offset;
    e.zip64 = force_zip64 || e.size >= k32 || offset >= k32;
    offset += 30 + e.name.size() + (e.zip64 ? 20 : 0) + e.size;
  }
  // One chunk per array: the large ones (a CSR matrix's data and indices) go to different threads.
  parallel_chunks(entries.size(), [&](std::size_t begin, std::size_t end, std::size_t) {
    for (std::size_t i = begin; i < end; ++i) {
      Entry& e = entries[i];
      e.crc = crc32(e.array->data, e.array->nbytes, crc32(e.header.data(), e.header.size()));
    }
  }, static_cast<int>(entries.size()));

  std::string central;
  for (const Entry& e : entries) {
    const std::uint16_t version = e.zip64 ? kVersion64 : kVersion;
    std::string local;
    put32(local, 0x04034b50);
    put_entry_fields(local, e, version, e.zip64 ? 20 : 0);
    local += e.name;
    if (e.zip64) {
      put16(local, 0x0001);
      put16(local, 16);
      put64(local, e.size);  // uncompressed
      put64(local, e.size);  // compressed
    }
    local += e.header;
    out.write(local);
    out.write(e.array->data, e.array->nbytes);

    put32(central, 0x02014b50);
    put16(central, kMadeOnUnix | version);
    put_entry_fields(central, e, version, e.zip64 ? 28 : 0);
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, kRegularFile0644);
    put32(central, low32(e.offset, e.zip64));
    central += e.name;
    if (e.zip64) {
      // Python's zipfile reads these in this order for the fields set to 0xFFFFFFFF above.
      put16(central, 0x0001);
      put16(central, 24);
      put64(central, e.size);
      put64(central, e.size);
      put64(central, e.offset);
    }
  }
  const std::uint64_t central_offset = offset;
  const std::uint64_t count = entries.size();
  const bool zip64_end = force_zip64 || central_offset >= k32 || central.size() >= k32 || count >= 0xFFFF;
  std::string end;
  if (zip64_end) {
    const std::uint64_t record = central_offset + central.size();
    put32(end, 0x06064b50);
    put64(end, 44);  // the record's size after this field
    put16(end, kMadeOnUnix | kVersion64);
    put16(end, kVersion64);
    put32(end, 0);
    put32(end, 0);
    put64(end, count);
    put64(end, count);
    put64(end, central.size());
    put64(end, central_offset);
    put32(end, 0x07064b50);  // the locator
    put32(end, 0);
    put64(end, record);
    put32(end, 1);
  }
  put32(end, 0x06054b50);
  put16(end, 0);
  put16(end, 0);
  const auto count16 = static_cast<std::uint16_t>(count >= 0xFFFF ? 0xFFFF : count);
  put16(end, count16);
  put16(end, count16);
  put32(end, central.size() >= k32 ? k32 : static_cast<std::uint32_t>(central.size()));
  put32(end, central_offset >= k32 ? k32 : static_cast<std::uint32_t>(central_offset));
  put16(end, 0);  // comment
  out.write(central + end);
}

}  // namespace kiln::core
