#include "kiln/data/reader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "byte_source.h"
#include "csv_reader.h"
#include "json_reader.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace kiln::data {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Format format_from_extension(const std::string& name) {
  std::string ext = lower(std::filesystem::path(name).extension().string());
  if (ext == ".csv") return Format::kCsv;
  if (ext == ".tsv" || ext == ".tab") return Format::kTsv;
  if (ext == ".jsonl" || ext == ".ndjson") return Format::kJsonl;
  if (ext == ".json") return Format::kJson;
  return Format::kAuto;
}

Format format_from_content(std::string_view head) {
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
  std::size_t i = 0;
  while (i < head.size() && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')) ++i;
  if (i < head.size() && head[i] == '[') return Format::kJson;
  if (i < head.size() && head[i] == '{') return Format::kJsonl;
  std::string_view first_line = head.substr(0, head.find('\n'));
  if (first_line.find('\t') != std::string_view::npos && first_line.find(',') == std::string_view::npos) {
    return Format::kTsv;
  }
  return Format::kCsv;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "auto") return Format::kAuto;
  if (name == "csv") return Format::kCsv;
  if (name == "tsv") return Format::kTsv;
  if (name == "jsonl") return Format::kJsonl;
  if (name == "json") return Format::kJson;
  throw ConfigError("format: unknown value '" + name + "'; choose one of auto, csv, tsv, jsonl, json");
}

std::string format_name(Format f) {
  switch (f) {
    case Format::kAuto: return "auto";
    case Format::kCsv: return "csv";
    case Format::kTsv: return "tsv";
    case Format::kJsonl: return "jsonl";
    case Format::kJson: return "json";
  }
  return "auto";
}

BadUtf8Policy parse_bad_utf8_policy(const std::string& name) {
  if (name == "error") return BadUtf8Policy::kError;
  if (name == "replace") return BadUtf8Policy::kReplace;
  if (name == "skip") return BadUtf8Policy::kSkip;
  throw ConfigError("on_bad_utf8: unknown value '" + name + "'; choose one of error, replace, skip");
}

std::unique_ptr<RecordReader> open_records_from_stream(std::unique_ptr<std::istream> in, const std::string& name,
                                                       const ReaderOptions& options,
                                                       const std::vector<std::string>& wanted) {
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    for (std::size_t j = i + 1; j < wanted.size(); ++j) {
      if (wanted[i] == wanted[j]) {
        throw ConfigError("column '" + wanted[i] + "' is asked for twice (e.g. as both the text and the label " +
                          "column); name two different columns");
      }
    }
  }
  auto src = std::make_unique<detail::ByteSource>(std::move(in), name);
  Format format = options.format;
  if (format == Format::kAuto) format = format_from_extension(name);
  if (format == Format::kAuto) format = format_from_content(src->lookahead());
  switch (format) {
    case Format::kTsv: return std::make_unique<detail::CsvReader>(std::move(src), '\t', options, wanted);
    case Format::kJsonl: return std::make_unique<detail::JsonReader>(std::move(src), true, options, wanted);
    case Format::kJson: return std::make_unique<detail::JsonReader>(std::move(src), false, options, wanted);
    case Format::kCsv:
    case Format::kAuto: break;
  }
  return std::make_unique<detail::CsvReader>(std::move(src), ',', options, wanted);
}

std::unique_ptr<RecordReader> open_records(const std::string& path, const ReaderOptions& options,
                                           const std::vector<std::string>& wanted) {
  if (path == "-") {
    auto in = std::make_unique<std::istream>(std::cin.rdbuf());
    return open_records_from_stream(std::move(in), "<stdin>", options, wanted);
  }
  core::require_regular_file(path, "input file");
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) throw IoError(path + ": cannot open the input file; check its permissions");
  return open_records_from_stream(std::move(in), path, options, wanted);
}

std::vector<std::string> read_column(const std::string& path, const ReaderOptions& options,
                                     const std::string& column) {
  auto reader = open_records(path, options, {column});
  std::vector<std::string> values;
  Record rec;
  // Copied, not moved: the copy is one exact allocation, and the record keeps its buffer's capacity
  // for the next row instead of regrowing it from empty.
  while (reader->next(rec)) values.push_back(rec.fields[0] ? *rec.fields[0] : std::string());
  return values;
}

}  // namespace kiln::data
