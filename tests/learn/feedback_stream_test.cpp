#include "kiln/learn/feedback_stream.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "kiln/core/error.h"

using namespace kiln;

namespace {
std::string error_of(const std::string& content) {
  std::istringstream in(content);
  learn::FeedbackReader r(in, "feedback.jsonl");
  try {
    while (r.next()) {
    }
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(FeedbackStream, ReadsItemsAndSkipsBlankLines) {
  std::istringstream in("{\"text\": \"a star\", \"label\": \"astro\", \"id\": 7}\n\n{\"text\": \"salt\", \"label\": \"cook\"}\r\n");
  learn::FeedbackReader r(in, "-");
  auto a = r.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a->example.text, "a star");
  EXPECT_EQ(a->example.label, "astro");
  EXPECT_EQ(a->id, "7");
  EXPECT_EQ(a->where, "stdin:1");
  auto b = r.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->where, "stdin:3");
  EXPECT_FALSE(r.next());
}

TEST(FeedbackStream, NamesTheLineOfEveryProblem) {
  const std::string ok = "{\"text\": \"x\", \"label\": \"a\"}\n";
  EXPECT_NE(error_of(ok + "{\"text\": \"x\", \"label\": \n").find("feedback.jsonl:2: not valid JSON ("), std::string::npos);
  EXPECT_NE(error_of(ok + ok + "[1, 2]\n").find("feedback.jsonl:3: expected a JSON object, got array"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"x\"}\n").find("feedback.jsonl:1: missing \"label\"; each line must be one JSON object"),
            std::string::npos);
  EXPECT_NE(error_of("{\"label\": \"a\"}\n").find("feedback.jsonl:1: missing \"text\" (or \"image\")"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"x\", \"label\": 3}\n").find("feedback.jsonl:1: \"label\" must be a non-empty string, got 3"),
            std::string::npos);
  EXPECT_NE(error_of("{\"text\": 5, \"label\": \"a\"}\n").find("feedback.jsonl:1: \"text\" must be a string, got number"),
            std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"x\", \"label\": \"a\", \"id\": [1]}\n").find("\"id\" must be a string or an integer"),
            std::string::npos);
}

TEST(FeedbackStream, ImagePathsAreRelativeToTheStreamsFolder) {
  std::istringstream in("{\"image\": \"img/a.png\", \"label\": \"a\"}\n{\"image\": \"/abs/b.png\", \"label\": \"b\"}\n");
  learn::FeedbackReader r(in, "/data/feedback/stream.jsonl");
  EXPECT_EQ(r.next()->example.image->path, "/data/feedback/img/a.png");
  EXPECT_EQ(r.next()->example.image->path, "/abs/b.png");
  std::istringstream in2("{\"image\": \"c.png\", \"label\": \"c\"}\n");
  learn::FeedbackReader stdin_reader(in2, "-");
  EXPECT_EQ(stdin_reader.next()->example.image->path, (std::filesystem::current_path() / "c.png").lexically_normal().string());
}
