#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/data/reader.h"

namespace fs = std::filesystem;
using kiln::data::Format;
using kiln::data::ReaderOptions;
using kiln::data::Record;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_csv_reader_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

struct Rows {
  std::vector<std::vector<std::optional<std::string>>> fields;
  std::vector<std::int64_t> lines;
};

Rows read_all(const std::string& path, std::vector<std::string> wanted, ReaderOptions opts = {}) {
  auto reader = kiln::data::open_records(path, opts, wanted);
  Rows rows;
  Record rec;
  while (reader->next(rec)) {
    rows.fields.push_back(rec.fields);
    rows.lines.push_back(rec.line);
  }
  return rows;
}

std::string error_of(const std::string& path, std::vector<std::string> wanted, ReaderOptions opts = {}) {
  try {
    read_all(path, wanted, opts);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CsvReader, ReadsQuotedFieldsWithDelimitersEscapesAndNewlines) {
  std::string path = write_file("quoted.csv",
                                "id,text,label\n"
                                "1,\"hello, world\",pos\n"
                                "2,\"she said \"\"hi\"\"\",neg\n"
                                "3,\"two\nlines\",pos\n"
                                "4,plain,neg\n");
  Rows rows = read_all(path, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 4u);
  EXPECT_EQ(*rows.fields[0][0], "hello, world");
  EXPECT_EQ(*rows.fields[1][0], "she said \"hi\"");
  EXPECT_EQ(*rows.fields[2][0], "two\nlines");
  EXPECT_EQ(*rows.fields[3][0], "plain");
  EXPECT_EQ(*rows.fields[3][1], "neg");
  EXPECT_EQ(rows.lines, (std::vector<std::int64_t>{2, 3, 4, 6}));
}

TEST(CsvReader, ReturnsWantedColumnsInRequestedOrder) {
  std::string path = write_file("order.csv", "label,x,text\na,1,t1\nb,2,t2\n");
  Rows rows = read_all(path, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 2u);
  EXPECT_EQ(*rows.fields[1][0], "t2");
  EXPECT_EQ(*rows.fields[1][1], "b");
}

TEST(CsvReader, HandlesCrlfBomBlankLinesAndMissingFinalNewline) {
  std::string path = write_file("crlf.csv", "\xEF\xBB\xBFtext,label\r\n\"a\r\nb\",x\r\n\r\nc,y");
  Rows rows = read_all(path, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 2u);
  EXPECT_EQ(*rows.fields[0][0], "a\r\nb");
  EXPECT_EQ(*rows.fields[1][0], "c");
  EXPECT_EQ(*rows.fields[1][1], "y");
  EXPECT_EQ(rows.lines[1], 5);
}

TEST(CsvReader, EmptyFieldsAndTrailingDelimiter) {
  std::string path = write_file("empty_fields.csv", "text,label,extra\n,\"\",\nx,y,\n");
  Rows rows = read_all(path, {"text", "label", "extra"});
  ASSERT_EQ(rows.fields.size(), 2u);
  EXPECT_EQ(*rows.fields[0][0], "");
  EXPECT_EQ(*rows.fields[0][1], "");
  EXPECT_EQ(*rows.fields[1][2], "");
}

TEST(CsvReader, QuoteInsideUnquotedFieldIsKeptLiterally) {
  std::string path = write_file("inner_quote.csv", "text,label\n5\" screen,a\n");
  Rows rows = read_all(path, {"text"});
  EXPECT_EQ(*rows.fields[0][0], "5\" screen");
}

TEST(CsvReader, ReadsTsvByExtensionAndByFormat) {
  std::string path = write_file("data.tsv", "text\tlabel\nhello, world\tpos\n");
  Rows rows = read_all(path, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 1u);
  EXPECT_EQ(*rows.fields[0][0], "hello, world");
  std::string other = write_file("data.txt", "text\tlabel\na\tb\n");
  ReaderOptions opts;
  opts.format = Format::kTsv;
  EXPECT_EQ(*read_all(other, {"label"}, opts).fields[0][0], "b");
  EXPECT_EQ(*read_all(other, {"label"}).fields[0][0], "b");  // sniffed: tabs, no commas
}

TEST(CsvReader, FieldsSpanningManyBufferRefills) {
  std::string big(200000, 'x');
  std::string quoted = "q\"\"" + std::string(150000, 'y') + "\n" + std::string(70000, 'z');
  std::ostringstream content;
  content << "text,label\n" << big << ",a\n\"" << quoted << "\",b\n";
  for (int i = 0; i < 20000; ++i) content << "\"r" << i << ",\"\"\",l" << (i % 3) << "\n";
  std::string path = write_file("big.csv", content.str());
  Rows rows = read_all(path, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 20002u);
  EXPECT_EQ(*rows.fields[0][0], big);
  EXPECT_EQ(*rows.fields[1][0], "q\"" + std::string(150000, 'y') + "\n" + std::string(70000, 'z'));
  EXPECT_EQ(*rows.fields[19999][0], "r19997,\"");
  EXPECT_EQ(*rows.fields[20001][1], "l1");
  EXPECT_EQ(rows.lines[2], 5);
}

TEST(CsvReader, ReadsFromStream) {
  auto in = std::make_unique<std::istringstream>("text,label\na,b\n");
  auto reader = kiln::data::open_records_from_stream(std::move(in), "mem.csv", {}, {"label"});
  Record rec;
  ASSERT_TRUE(reader->next(rec));
  EXPECT_EQ(*rec.fields[0], "b");
  EXPECT_EQ(rec.row, 1);
  EXPECT_FALSE(reader->next(rec));
}

TEST(CsvReader, ReadColumnReturnsEveryValue) {
  std::string path = write_file("col.csv", "text,label\na,1\nb,2\n");
  EXPECT_EQ(kiln::data::read_column(path, {}, "label"), (std::vector<std::string>{"1", "2"}));
}

TEST(CsvReader, MissingFileNamesPath) {
  std::string msg = error_of((temp_dir() / "nope.csv").string(), {"text"});
  EXPECT_NE(msg.find("nope.csv: input file not found"), std::string::npos) << msg;
  EXPECT_THROW(read_all((temp_dir() / "nope.csv").string(), {"text"}), kiln::IoError);
}

TEST(CsvReader, DirectoryIsAnError) {
  std::string msg = error_of(temp_dir().string(), {"text"});
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
}

TEST(CsvReader, EmptyFileIsAnError) {
  std::string path = write_file("empty.csv", "");
  std::string msg = error_of(path, {"text"});
  EXPECT_NE(msg.find("empty.csv: empty file: no header row"), std::string::npos) << msg;
  EXPECT_THROW(read_all(path, {"text"}), kiln::DataError);
}

TEST(CsvReader, UnknownColumnListsColumnsFound) {
  std::string path = write_file("cols.csv", "Text,label\na,b\n");
  std::string msg = error_of(path, {"text", "label"});
  EXPECT_NE(msg.find("cols.csv:1: column 'text' not found in the header; columns found: 'Text', 'label'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("did you mean 'Text'?"), std::string::npos) << msg;
}

TEST(CsvReader, UnknownColumnSuggestsTheDelimiter) {
  std::string path = write_file("semi.csv", "text\tlabel\na\tb\n");
  ReaderOptions opts;
  opts.format = Format::kCsv;
  std::string msg = error_of(path, {"text"}, opts);
  EXPECT_NE(msg.find("is the delimiter tab?"), std::string::npos) << msg;
}

TEST(CsvReader, DuplicateWantedColumnInHeaderIsAnError) {
  std::string path = write_file("dup.csv", "text,text,label\na,b,c\n");
  std::string msg = error_of(path, {"text"});
  EXPECT_NE(msg.find("column 'text' appears 2 times in the header (columns 1 and 2)"), std::string::npos) << msg;
}

TEST(CsvReader, UnterminatedQuoteSaysWhereItOpened) {
  std::string path = write_file("unterminated.csv", "text,label\na,b\nc,d\nok,\"never closed\nmore\n");
  std::string msg = error_of(path, {"text", "label"});
  EXPECT_NE(msg.find("unterminated.csv:6:1: unterminated quoted field (opened at 4:4)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stray '\"'"), std::string::npos) << msg;
}

// Long quoted fields are scanned 16 bytes at a time: newlines (several in one block, at block edges)
// and doubled quotes inside them must still count lines and columns exactly.
TEST(CsvReader, LongMultiLineQuotedFieldsKeepLineAndColumn) {
  const std::string x(37, 'x');
  const std::string content = "text,label\n"
                              "\"" + x + "\n\n\na\nb\n" + x + " said \"\"hi\"\" " + x + "\n\",a\n"  // lines 2-8
                              "\"" + std::string(15, 'y') + "\n" + std::string(16, 'z') + "\n\",b\n"          // lines 9-11
                              "last,c\n"                                                                 // line 12
                              "\"" + x + "\n" + x + "\"!,d\n";                                           // lines 13-14
  const std::string path = write_file("long_quoted.csv", content);
  std::string msg = error_of(path, {"text", "label"});
  EXPECT_NE(msg.find("long_quoted.csv:14:39: unexpected '!' after the closing quote of the field opened at 13:1"),
            std::string::npos)
      << msg;
  const std::string good = write_file("long_quoted_ok.csv", content.substr(0, content.find("last,c\n") + 7));
  Rows rows = read_all(good, {"text", "label"});
  ASSERT_EQ(rows.fields.size(), 3u);
  EXPECT_EQ(rows.lines, (std::vector<std::int64_t>{2, 9, 12}));
  EXPECT_EQ(*rows.fields[0][0], x + "\n\n\na\nb\n" + x + " said \"hi\" " + x + "\n");
  EXPECT_EQ(*rows.fields[1][0], std::string(15, 'y') + "\n" + std::string(16, 'z') + "\n");
  EXPECT_EQ(*rows.fields[2][1], "c");
}

TEST(CsvReader, RaggedRowNamesExpectedAndActualCounts) {
  std::string path = write_file("ragged.csv", "text,label\na,b\nc,d,e\n");
  std::string msg = error_of(path, {"text", "label"});
  EXPECT_NE(msg.find("ragged.csv:3:1: row 2 has 3 fields, expected 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("enclosed in double quotes"), std::string::npos) << msg;
  std::string short_path = write_file("short.csv", "text,label\nonly\n");
  msg = error_of(short_path, {"text"});
  EXPECT_NE(msg.find("short.csv:2:1: row 1 has 1 field, expected 2"), std::string::npos) << msg;
}

TEST(CsvReader, TextAfterClosingQuoteIsAnError) {
  std::string path = write_file("after_quote.csv", "text,label\n\"a\"b,c\n");
  std::string msg = error_of(path, {"text"});
  EXPECT_NE(msg.find("after_quote.csv:2:4: unexpected 'b' after the closing quote of the field opened at 2:1"),
            std::string::npos)
      << msg;
}

TEST(CsvReader, InvalidUtf8NamesRowAndByteOffset) {
  std::string path = write_file("latin1.csv", "text,label\nok,a\ncaf\xE9 au lait,b\n");
  std::string msg = error_of(path, {"text", "label"});
  EXPECT_NE(msg.find("latin1.csv:3:1: invalid UTF-8 in row 2, field 'text', at byte 3 of the value (byte offset 19 "
                     "in the file): byte 0xE9"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--on-bad-utf8"), std::string::npos) << msg;
}

TEST(CsvReader, InvalidUtf8ReplaceAndSkip) {
  std::string path = write_file("latin1b.csv", "text,label\nok,a\ncaf\xE9,b\nfine,c\n");
  ReaderOptions opts;
  opts.on_bad_utf8 = kiln::data::BadUtf8Policy::kReplace;
  Rows rows = read_all(path, {"text"}, opts);
  ASSERT_EQ(rows.fields.size(), 3u);
  EXPECT_EQ(*rows.fields[1][0], "caf\xEF\xBF\xBD");

  opts.on_bad_utf8 = kiln::data::BadUtf8Policy::kSkip;
  auto reader = kiln::data::open_records(path, opts, {"text"});
  Record rec;
  std::vector<std::string> texts;
  while (reader->next(rec)) texts.push_back(*rec.fields[0]);
  EXPECT_EQ(texts, (std::vector<std::string>{"ok", "fine"}));
  EXPECT_EQ(reader->skipped_bad_utf8(), 1);
}

TEST(CsvReader, InvalidUtf8InUnwantedColumnIsIgnored) {
  std::string path = write_file("latin1c.csv", "text,note,label\nok,caf\xE9,a\n");
  EXPECT_EQ(read_all(path, {"text", "label"}).fields.size(), 1u);
}

TEST(CsvReader, ReadsSixMegabytesQuickly) {
  std::ostringstream content;
  content << "text,label\n";
  for (int i = 0; content.tellp() < 6 * 1000 * 1000; ++i) {
    content << "\"row " << i << ", with a comma and \"\"quotes\"\" and some more words to read\",class" << (i % 5)
            << "\n";
    content << "plain row " << i << " without quotes but with enough words to be realistic,class" << (i % 7) << "\n";
  }
  std::string path = write_file("six_mb.csv", content.str());
  double best = 1e9;
  std::size_t rows = 0;
  for (int run = 0; run < 3; ++run) {
    auto start = std::chrono::steady_clock::now();
    auto reader = kiln::data::open_records(path, {}, {"text", "label"});
    Record rec;
    rows = 0;
    std::size_t bytes = 0;
    while (reader->next(rec)) {
      ++rows;
      bytes += rec.fields[0]->size();
    }
    EXPECT_GT(bytes, 0u);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  EXPECT_GT(rows, 50000u);
  // Typically a few hundredths of a second in a Release build; the bound leaves room for loaded
  // machines and sanitizer builds.
  EXPECT_LT(best, 1.0);
  std::cout << "read 6 MB CSV (" << rows << " rows) in " << best << " s\n";
}

TEST(Reader, ParseFormatAndPolicyRejectUnknownNames) {
  EXPECT_EQ(kiln::data::parse_format("jsonl"), Format::kJsonl);
  EXPECT_EQ(kiln::data::format_name(Format::kTsv), "tsv");
  try {
    (void)kiln::data::parse_format("xml");
    FAIL() << "no error";
  } catch (const kiln::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown value 'xml'; choose one of auto, csv, tsv, jsonl, json"),
              std::string::npos);
  }
  EXPECT_THROW((void)kiln::data::parse_bad_utf8_policy("ignore"), kiln::ConfigError);
}

TEST(Reader, SameColumnTwiceIsAConfigError) {
  std::string path = write_file("twice.csv", "text,label\na,b\n");
  EXPECT_THROW(read_all(path, {"text", "text"}), kiln::ConfigError);
}

TEST(Reader, DetectsFormatFromContentWhenExtensionIsUnknown) {
  std::string jsonl = write_file("data.dat", "{\"text\": \"a\", \"label\": 1}\n");
  EXPECT_EQ(*read_all(jsonl, {"label"}).fields[0][0], "1");
  std::string json = write_file("data2.dat", "  [{\"text\": \"a\", \"label\": true}]");
  EXPECT_EQ(*read_all(json, {"label"}).fields[0][0], "true");
  std::string csv = write_file("data3.dat", "text,label\na,b\n");
  EXPECT_EQ(*read_all(csv, {"label"}).fields[0][0], "b");
}
