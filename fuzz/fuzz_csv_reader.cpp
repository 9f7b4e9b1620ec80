// libFuzzer target for the CSV/TSV reader. Input: one mode byte, then the file content.
// Mode bits: 0 = delimiter (',' or tab), 1-2 = invalid-UTF-8 policy, 3 = 16-byte buffer (exercises
// every refill boundary) instead of the default one. The reader must return or throw kiln::Error;
// anything else (crash, hang, other exception, sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "byte_source.h"
#include "csv_reader.h"
#include "kiln/core/error.h"
#include "kiln/data/reader.h"

namespace {

void drain(kiln::data::RecordReader& reader) {
  kiln::data::Record rec;
  while (reader.next(rec)) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string content(reinterpret_cast<const char*>(data + 1), size - 1);
  kiln::data::ReaderOptions options;
  const bool tsv = mode & 1;
  options.format = tsv ? kiln::data::Format::kTsv : kiln::data::Format::kCsv;
  options.on_bad_utf8 = static_cast<kiln::data::BadUtf8Policy>(((mode >> 1) & 3) % 3);
  const bool small_buffer = mode & 8;
  const std::vector<std::vector<std::string>> wanted_sets = {{}, {"a", "b"}, {"b"}};
  for (const auto& wanted : wanted_sets) {
    try {
      auto in = std::make_unique<std::istringstream>(content);
      if (small_buffer) {
        auto src = std::make_unique<kiln::data::detail::ByteSource>(std::move(in), "fuzz.csv", 16);
        kiln::data::detail::CsvReader reader(std::move(src), tsv ? '\t' : ',', options, wanted);
        drain(reader);
      } else {
        auto reader = kiln::data::open_records_from_stream(std::move(in), "fuzz.csv", options, wanted);
        drain(*reader);
      }
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
