#include <gtest/gtest.h>
#include <unistd.h>

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
    fs::path p = fs::temp_directory_path() / ("kiln_json_reader_test_" + std::to_string(::getpid()));
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

using Fields = std::vector<std::optional<std::string>>;

std::vector<Fields> read_all(const std::string& path, std::vector<std::string> wanted = {"text", "label"},
                             ReaderOptions opts = {}) {
  auto reader = kiln::data::open_records(path, opts, wanted);
  std::vector<Fields> rows;
  Record rec;
  while (reader->next(rec)) rows.push_back(rec.fields);
  return rows;
}

std::string error_of(const std::string& path, std::vector<std::string> wanted = {"text", "label"},
                     ReaderOptions opts = {}) {
  try {
    read_all(path, wanted, opts);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(JsonlReader, ReadsObjectsAndConvertsScalarsToText) {
  std::string path = write_file("basic.jsonl",
                                "{\"text\": \"hello\", \"label\": \"pos\"}\n"
                                "\n"
                                "  {\"label\": 1, \"text\": \"one\"}\r\n"
                                "{\"text\": \"t\", \"label\": 2.50}\n"
                                "{\"text\": \"t\", \"label\": true}\n"
                                "{\"text\": null, \"label\": false}\n"
                                "{\"label\": -1e3}");
  auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(*rows[0][0], "hello");
  EXPECT_EQ(*rows[1][1], "1");
  EXPECT_EQ(*rows[1][0], "one");
  EXPECT_EQ(*rows[2][1], "2.50");
  EXPECT_EQ(*rows[3][1], "true");
  EXPECT_FALSE(rows[4][0].has_value());
  EXPECT_EQ(*rows[4][1], "false");
  EXPECT_FALSE(rows[5][0].has_value());
  EXPECT_EQ(*rows[5][1], "-1e3");
}

TEST(JsonlReader, DecodesEscapesAndSkipsUnwantedNestedValues) {
  std::string path = write_file("escapes.jsonl",
                                "{\"meta\": {\"a\": [1, {\"b\": \"}]\"}, []], \"c\": {}}, \"text\": "
                                "\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n\\t\\/\", \"label\": \"x\", \"text\": \"last\"}\n"
                                "{\"text\": \"caf\\u00e9\", \"label\": \"y\", \"extra\": [[[]]]}\n");
  auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(*rows[0][0], "last");  // duplicate keys: the last wins
  EXPECT_EQ(*rows[1][0], "caf\xC3\xA9");
  auto one = read_all(write_file("esc2.jsonl", "{\"text\": \"\\ud83d\\ude00 \\\"q\\\"\\n\\t\\/\", \"label\": 1}\n"));
  EXPECT_EQ(*one[0][0], "\xF0\x9F\x98\x80 \"q\"\n\t/");
}

TEST(JsonlReader, SyntaxErrorNamesLineAndColumn) {
  std::string path = write_file("syntax.jsonl",
                                "{\"text\": \"a\", \"label\": \"b\"}\n"
                                "{\"text\": \"a\" \"label\": \"b\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("syntax.jsonl:2:14: JSON syntax error: expected ',' or '}' after the value of key 'text', "
                     "found '\"'"),
            std::string::npos)
      << msg;
}

TEST(JsonlReader, ObjectMustEndOnItsLine) {
  std::string path = write_file("split.jsonl", "{\"text\": \"a\",\n \"label\": \"b\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("split.jsonl:1:14: JSON syntax error: expected a key in double quotes, found end of line"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("each JSONL line must hold one complete JSON object"), std::string::npos) << msg;
}

TEST(JsonlReader, LineThatIsNotAnObjectIsAnError) {
  std::string path = write_file("array_line.jsonl", "{\"text\": \"a\", \"label\": \"b\"}\n[1, 2]\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("array_line.jsonl:2:1: line holds an array, expected a JSON object ('{')"), std::string::npos)
      << msg;
}

TEST(JsonlReader, TwoObjectsOnOneLineIsAnError) {
  std::string path = write_file("two.jsonl", "{\"text\": \"a\", \"label\": \"b\"} {\"text\": \"c\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("two.jsonl:1:29: unexpected '{' after the end of the object"), std::string::npos) << msg;
}

TEST(JsonlReader, NestedValueInWantedKeyNamesLineAndKey) {
  std::string path = write_file("nested.jsonl",
                                "{\"text\": \"a\", \"label\": \"b\"}\n"
                                "{\"text\": {\"body\": \"a\"}, \"label\": \"b\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("nested.jsonl:2:10: key 'text' holds an object, expected a string, number or boolean"),
            std::string::npos)
      << msg;
  path = write_file("nested2.jsonl", "{\"text\": \"a\", \"label\": [\"b\"]}\n");
  msg = error_of(path);
  EXPECT_NE(msg.find("nested2.jsonl:1:24: key 'label' holds an array"), std::string::npos) << msg;
}

TEST(JsonlReader, KeyInNoObjectListsKeysFound) {
  std::string path = write_file("keys.jsonl", "{\"body\": \"a\", \"label\": \"b\"}\n{\"body\": \"c\", \"label\": \"d\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("keys.jsonl: no object has the key 'text' (read 2 objects); keys found: 'body', 'label'"),
            std::string::npos)
      << msg;
}

TEST(JsonlReader, EmptyFileIsAnError) {
  std::string path = write_file("empty.jsonl", "\n\n  \n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("empty.jsonl: empty file; expected one JSON object per line"), std::string::npos) << msg;
}

TEST(JsonlReader, UnterminatedStringAndBadEscape) {
  std::string msg = error_of(write_file("unterminated.jsonl", "{\"text\": \"abc"));
  EXPECT_NE(msg.find("unterminated.jsonl:1:14: unterminated string (opened at 1:10)"), std::string::npos) << msg;
  msg = error_of(write_file("raw_newline.jsonl", "{\"text\": \"ab\nc\"}\n"));
  EXPECT_NE(msg.find("raw_newline.jsonl:1:13: JSON syntax error: unescaped control character end of line"),
            std::string::npos)
      << msg;
  msg = error_of(write_file("bad_escape.jsonl", "{\"text\": \"a\\qb\"}\n"));
  EXPECT_NE(msg.find("invalid escape \\q"), std::string::npos) << msg;
  msg = error_of(write_file("surrogate.jsonl", "{\"text\": \"\\udc00\"}\n"));
  EXPECT_NE(msg.find("lone low surrogate"), std::string::npos) << msg;
}

TEST(JsonlReader, InvalidUtf8NamesRowAndByteOffset) {
  std::string path = write_file("latin1.jsonl", "{\"text\": \"ok\", \"label\": \"a\"}\n{\"text\": \"caf\xE9\", \"label\": \"b\"}\n");
  std::string msg = error_of(path);
  EXPECT_NE(msg.find("latin1.jsonl:2:10: invalid UTF-8 in row 2, field 'text', at byte 3 of the value (byte offset "
                     "42 in the file)"),
            std::string::npos)
      << msg;
  ReaderOptions opts;
  opts.on_bad_utf8 = kiln::data::BadUtf8Policy::kReplace;
  EXPECT_EQ(*read_all(path, {"text"}, opts)[1][0], "caf\xEF\xBF\xBD");
}

TEST(JsonReader, ReadsArrayOfObjects) {
  std::string path = write_file("data.json",
                                "\xEF\xBB\xBF[\n  {\"text\": \"a\", \"label\": \"x\"},\n  {\"text\": \"b\",\n   \"label\": 3}\n]\n");
  auto rows = read_all(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(*rows[1][0], "b");
  EXPECT_EQ(*rows[1][1], "3");
  EXPECT_TRUE(read_all(write_file("empty_array.json", "[ ]")).empty());
}

TEST(JsonReader, TopLevelObjectIsNotAnArray) {
  std::string msg = error_of(write_file("object.json", "{\"text\": \"a\", \"label\": \"b\"}\n"));
  EXPECT_NE(msg.find("object.json:1:1: the top level is an object, expected an array of objects"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("set the format to jsonl"), std::string::npos) << msg;
}

TEST(JsonReader, ElementThatIsNotAnObject) {
  std::string msg = error_of(write_file("strings.json", "[{\"text\": \"a\", \"label\": \"b\"},\n \"c\"]"));
  EXPECT_NE(msg.find("strings.json:2:2: array element 2 is a string, expected an object"), std::string::npos) << msg;
}

TEST(JsonReader, TrailingCommaAndTrailingData) {
  std::string msg = error_of(write_file("comma.json", "[{\"text\": \"a\", \"label\": \"b\"},]"));
  EXPECT_NE(msg.find("comma.json:1:30: JSON syntax error: trailing comma before ']'"), std::string::npos) << msg;
  msg = error_of(write_file("trailing.json", "[{\"text\": \"a\", \"label\": \"b\"}] x"));
  EXPECT_NE(msg.find("trailing.json:1:31: unexpected 'x' after the end of the top-level array"), std::string::npos)
      << msg;
  msg = error_of(write_file("truncated.json", "[{\"text\": \"a\", \"label\": \"b\"}"));
  EXPECT_NE(msg.find("truncated.json:1:29: JSON syntax error: expected ',' or ']' after array element 1, found end of "
                     "input"),
            std::string::npos)
      << msg;
}

TEST(JsonReader, FormatFlagOverridesExtension) {
  std::string path = write_file("lines.json", "{\"text\": \"a\", \"label\": \"b\"}\n");
  ReaderOptions opts;
  opts.format = Format::kJsonl;
  EXPECT_EQ(read_all(path, {"text", "label"}, opts).size(), 1u);
}

TEST(JsonReader, DeepNestingInSkippedValueIsBounded) {
  std::string deep = "[{\"x\": " + std::string(20000, '[') + std::string(20000, ']') + ", \"text\": \"a\"}]";
  std::string msg = error_of(write_file("deep.json", deep));
  EXPECT_NE(msg.find("nested more than 10000 levels deep"), std::string::npos) << msg;
  std::string ok = "[{\"x\": " + std::string(500, '[') + std::string(500, ']') + ", \"text\": \"a\", \"label\": 1}]";
  EXPECT_EQ(read_all(write_file("ok_deep.json", ok)).size(), 1u);
}
