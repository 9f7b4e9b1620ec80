#include "kiln/core/npz.h"

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

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "lib/require_tools.h"
#include "lib/scratch_files.h"

namespace fs = std::filesystem;
using kiln::core::NpyArray;

namespace {

fs::path fresh_dir(const std::string& name) { return kiln::testing::fresh_dir("kiln_npz_test", name); }
using kiln::testing::slurp;

std::uint32_t bitwise_crc(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

std::uint64_t le(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s.at(at + static_cast<std::size_t>(i)));
  return v;
}

// The arrays every archive test writes: a matrix-like set (float32 data, int64 shape, a 0-d bytes
// string, an empty array).
struct Sample {
  std::vector<float> data{0.5f, -1.25f, 3.0f, 1e-8f, 7.0f};
  std::vector<std::int64_t> shape{2, 3};
  std::vector<std::int32_t> empty;
  std::vector<NpyArray> arrays() const {
    return {{"data", "<f4", {5}, data.data(), data.size() * sizeof(float)},
            {"shape", "<i8", {2}, shape.data(), shape.size() * sizeof(std::int64_t)},
            {"format", "|S3", {}, "csr", 3},
            {"none", "<i4", {0}, empty.data(), 0}};
  }
};

fs::path write_sample(const std::string& name, bool zip64) {
  const fs::path p = fresh_dir(name) / "a.npz";
  Sample s;
  kiln::core::AtomicFile f(p);
  kiln::core::write_npz(f, s.arrays(), zip64);
  f.commit();
  return p;
}

}  // namespace

TEST(Npz, Crc32MatchesTheBitwiseDefinitionAtEveryLengthAndSplit) {
  EXPECT_EQ(kiln::core::crc32("123456789", 9), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(kiln::core::crc32("", 0), 0u);
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes += static_cast<char>((i * 131 + 7) & 0xFF);
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const std::string s = bytes.substr(0, n);
    EXPECT_EQ(kiln::core::crc32(s.data(), n), bitwise_crc(s)) << "length " << n;
  }
  const std::uint32_t whole = kiln::core::crc32(bytes.data(), bytes.size());
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    EXPECT_EQ(kiln::core::crc32(bytes.data() + cut, bytes.size() - cut, kiln::core::crc32(bytes.data(), cut)), whole)
        << "split at " << cut;
  }
}

TEST(Npz, NpyHeaderIsNumpysLayoutAlignedTo64Bytes) {
  const float x[3] = {};
  const std::string h = kiln::core::npy_header({"x", "<f4", {3}, x, sizeof x});
  ASSERT_EQ(h.size(), 128u);
  EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(le(h, 8, 2), 118u);
  EXPECT_EQ(h.substr(10, 57), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
  EXPECT_EQ(h.back(), '\n');
  EXPECT_EQ(h.find_first_not_of(' ', 67), h.size() - 1);  // spaces up to the newline
  EXPECT_NE(kiln::core::npy_header({"s", "|S3", {}, "abc", 3}).find("'shape': (), }"), std::string::npos);
  EXPECT_NE(kiln::core::npy_header({"m", "<f8", {2, 3}, x, 0}).find("'shape': (2, 3), }"), std::string::npos);
}

// Walks the archive as a zip reader does (end record, central directory, local headers) and checks
// every entry's name, offset, sizes and CRC against its .npy header and data.
TEST(Npz, ArchiveIsAValidZipOfStoredEntriesWithAndWithoutZip64) {
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "zip");
    const std::string z = slurp(write_sample(zip64 ? "walk64" : "walk", zip64));
    const Sample sample;
    const auto arrays = sample.arrays();
    ASSERT_GE(z.size(), 22u);
    const std::size_t eocd = z.size() - 22;
    ASSERT_EQ(le(z, eocd, 4), 0x06054b50u);
    EXPECT_EQ(le(z, eocd + 10, 2), arrays.size());
    std::uint64_t cd_offset = le(z, eocd + 16, 4);
    if (zip64) {
      const std::size_t locator = eocd - 20;
      ASSERT_EQ(le(z, locator, 4), 0x07064b50u);
      const std::size_t record = le(z, locator + 8, 8);
      ASSERT_EQ(le(z, record, 4), 0x06064b50u);
      EXPECT_EQ(le(z, record + 32, 8), arrays.size());
      cd_offset = le(z, record + 48, 8);
    }
    std::size_t at = cd_offset;
    for (const NpyArray& a : arrays) {
      ASSERT_EQ(le(z, at, 4), 0x02014b50u) << a.name;
      EXPECT_EQ(le(z, at + 10, 2), 0u) << "stored, not compressed";
      const auto name_len = static_cast<std::size_t>(le(z, at + 28, 2));
      const auto extra_len = static_cast<std::size_t>(le(z, at + 30, 2));
      EXPECT_EQ(z.substr(at + 46, name_len), a.name + ".npy");
      std::uint64_t size = le(z, at + 24, 4);
      std::uint64_t local = le(z, at + 42, 4);
      const std::uint32_t crc = static_cast<std::uint32_t>(le(z, at + 16, 4));
      if (zip64) {
        EXPECT_EQ(size, 0xFFFFFFFFu);
        const std::size_t extra = at + 46 + name_len;
        ASSERT_EQ(le(z, extra, 2), 1u);
        size = le(z, extra + 4, 8);
        local = le(z, extra + 20, 8);
      }
      ASSERT_EQ(le(z, local, 4), 0x04034b50u) << a.name;
      EXPECT_EQ(le(z, local + 14, 4), crc);
      const std::size_t content = local + 30 + le(z, local + 26, 2) + le(z, local + 28, 2);
      const std::string header = kiln::core::npy_header(a);
      ASSERT_EQ(size, header.size() + a.nbytes);
      EXPECT_EQ(z.substr(content, header.size()), header);
      EXPECT_EQ(z.substr(content + header.size(), a.nbytes), std::string(static_cast<const char*>(a.data), a.nbytes));
      EXPECT_EQ(kiln::core::crc32(z.data() + content, size), crc) << a.name;
      at += 46 + name_len + extra_len;
    }
    EXPECT_EQ(le(z, at, 4), zip64 ? 0x06064b50u : 0x06054b50u);
  }
}

TEST(Npz, TheSameBytesAtAnyThreadCount) {
  const int before = kiln::core::threads();
  kiln::core::set_threads(1);
  const std::string one = slurp(write_sample("one", false));
  kiln::core::set_threads(3);
  const std::string three = slurp(write_sample("three", false));
  kiln::core::set_threads(before);
  EXPECT_EQ(one, three);
}

TEST(Npz, NumpyLoadsTheArchive) {
  KILN_REQUIRE_TOOL(std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0,
                    "/usr/bin/python3 with numpy", "python3-numpy");
  for (bool zip64 : {false, true}) {
    const fs::path p = write_sample(zip64 ? "numpy64" : "numpy", zip64);
    const std::string script =
        "import sys, zipfile, numpy as np\n"
        "assert zipfile.ZipFile(sys.argv[1]).testzip() is None\n"
        "z = np.load(sys.argv[1], allow_pickle=False)\n"
        "assert sorted(z.files) == ['data', 'format', 'none', 'shape'], z.files\n"
        "d = z['data']; assert d.dtype == np.float32 and d.tolist() == np.array([0.5, -1.25, 3.0, 1e-8, 7.0], "
        "np.float32).tolist(), d\n"
        "assert z['shape'].dtype == np.int64 and z['shape'].tolist() == [2, 3]\n"
        "assert z['format'].shape == () and z['format'].item() == b'csr'\n"
        "assert z['none'].dtype == np.int32 and z['none'].shape == (0,)\n";
    const fs::path py = p.parent_path() / "check.py";
    std::ofstream(py) << script;
    const std::string cmd = "/usr/bin/python3 '" + py.string() + "' '" + p.string() + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << (zip64 ? " (zip64)" : "");
  }
}

TEST(Npz, DuplicateOrEmptyNamesAreRefusedAndNothingIsWritten) {
  const fs::path dir = fresh_dir("dup");
  const float x = 1;
  for (const auto& [arrays, message] :
       std::vector<std::pair<std::vector<NpyArray>, std::string>>{
           {{{"a", "<f4", {1}, &x, 4}, {"a", "<f4", {1}, &x, 4}}, "npz: two arrays are named 'a'"},
           {{{"", "<f4", {1}, &x, 4}}, "npz: an array has an empty name"}}) {
    {
      kiln::core::AtomicFile f(dir / "bad.npz");
      try {
        kiln::core::write_npz(f, arrays);
        ADD_FAILURE() << "no error for: " << message;
      } catch (const kiln::Error& e) {
        EXPECT_EQ(std::string(e.what()), message);
      }
    }  // abandoned: the temporary is removed
    EXPECT_TRUE(fs::is_empty(dir)) << message;
  }
}
