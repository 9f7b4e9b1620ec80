#include "json_reader.h"

#include <cstdio>

#include "kiln/core/error.h"
#include "kiln/core/utf8.h"

namespace kiln::data::detail {
namespace {

constexpr std::size_t kMaxKeysListed = 30;
constexpr std::int64_t kKeyScanRows = 1000;

std::string describe(int c) {
  if (c < 0) return "end of input";
  if (c == '\n') return "end of line";
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
  return buf;
}

const char* value_kind(int c) {
  switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : "not a JSON value";
  }
}

int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

JsonReader::JsonReader(std::unique_ptr<ByteSource> src, bool lines, const ReaderOptions& options,
                       std::vector<std::string> wanted)
    : ReaderBase(src->name(), options, std::move(wanted)), src_(std::move(src)), lines_(lines),
      seen_(wanted_.size(), false) {
  std::string_view head = src_->lookahead();
  if (head.substr(0, 3) == "\xEF\xBB\xBF") src_->advance(3);
  skip_ws(true);
  if (src_->peek() < 0) {
    throw DataError(name_ + ": empty file; expected " +
                    std::string(lines_ ? "one JSON object per line (JSONL)" : "a JSON array of objects") +
                    ", e.g. {\"text\": \"...\", \"label\": \"...\"}");
  }
  if (!lines_) {
    if (src_->peek() != '[') {
      int c = src_->peek();
      fail(std::string("the top level is ") + value_kind(c) + ", expected an array of objects ([{...}, {...}])",
           c == '{' ? "for one object per line set the format to jsonl" : "");
    }
    src_->get();
    array_open_ = true;
  }
}

void JsonReader::fail(const std::string& what, const std::string& hint) {
  std::string msg = src_->where() + ": " + what;
  if (!hint.empty()) msg += "; " + hint;
  throw DataError(msg);
}

void JsonReader::unexpected(const std::string& expected) {
  int c = src_->peek();
  std::string hint;
  if (lines_ && (c == '\n' || c < 0)) {
    hint = "each JSONL line must hold one complete JSON object";
  } else {
    hint = lines_ ? "each line must be one JSON object, e.g. {\"text\": \"...\", \"label\": \"...\"}"
                  : "check the JSON syntax near this point";
  }
  fail("JSON syntax error: expected " + expected + ", found " + describe(c), hint);
}

void JsonReader::skip_ws(bool newlines) {
  ByteSource& s = *src_;
  for (;;) {
    if (!s.fill()) return;
    char c = *s.cur();
    if (c == ' ' || c == '\t' || c == '\r') s.advance(1);
    else if (c == '\n' && newlines) s.advance_line();
    else return;
  }
}

bool JsonReader::next_raw(Record& out) {
  if (done_) return false;
  out.fields.assign(wanted_.size(), std::nullopt);
  if (lines_) {
    skip_ws(true);
    int c = src_->peek();
    if (c < 0) {
      done_ = true;
      check_keys_seen();
      return false;
    }
    if (c != '{') {
      fail(std::string("line holds ") + value_kind(c) + ", expected a JSON object ('{')",
           "each JSONL line must be one object, e.g. {\"text\": \"...\", \"label\": \"...\"} (for a JSON array set "
           "the format to json)");
    }
    out.line = src_->line();
    parse_object(out);
    skip_ws(false);
    c = src_->peek();
    if (c >= 0 && c != '\n') {
      fail("unexpected " + describe(c) + " after the end of the object", "put exactly one JSON object on each line");
    }
  } else {
    skip_ws(true);
    int c = src_->peek();
    if (!array_open_) {
      // After an element: ',' or ']'.
      if (c == ',') {
        src_->get();
        skip_ws(true);
        c = src_->peek();
        if (c == ']') fail("JSON syntax error: trailing comma before ']'", "remove the last ','");
      } else if (c != ']') {
        unexpected("',' or ']' after array element " + std::to_string(row_));
      }
    }
    array_open_ = false;
    if (c == ']') {
      src_->get();
      skip_ws(true);
      if (src_->peek() >= 0) {
        fail("unexpected " + describe(src_->peek()) + " after the end of the top-level array",
             "the file must hold exactly one JSON array");
      }
      done_ = true;
      check_keys_seen();
      return false;
    }
    if (c != '{') {
      if (c < 0) unexpected("an object or ']'");
      fail("array element " + std::to_string(row_ + 1) + " is " + value_kind(c) + ", expected an object",
           "each element must be an object like {\"text\": \"...\", \"label\": \"...\"}");
    }
    out.line = src_->line();
    parse_object(out);
  }
  ++row_;
  out.row = row_;
  return true;
}

void JsonReader::parse_object(Record& out) {
  ByteSource& s = *src_;
  s.get();  // '{'
  skip_ws(!lines_);
  if (s.peek() == '}') {
    s.get();
    return;
  }
  for (;;) {
    if (s.peek() != '"') unexpected("a key in double quotes");
    key_.clear();
    parse_string(&key_, nullptr);
    skip_ws(!lines_);
    if (s.peek() != ':') unexpected("':' after key " + quote_for_message(key_));
    s.get();
    skip_ws(!lines_);
    std::size_t f = 0;
    while (f < wanted_.size() && wanted_[f] != key_) ++f;
    if (f < wanted_.size()) {
      seen_[f] = true;
      parse_wanted_value(f, out);
    } else {
      skip_value();
    }
    if (row_ < kKeyScanRows && keys_found_.size() < kMaxKeysListed) {
      bool known = false;
      for (const std::string& k : keys_found_) known = known || k == key_;
      if (!known) keys_found_.push_back(key_);
    }
    skip_ws(!lines_);
    int c = s.peek();
    if (c == ',') {
      s.get();
      skip_ws(!lines_);
      if (s.peek() == '}') fail("JSON syntax error: trailing comma before '}'", "remove the last ','");
      continue;
    }
    if (c == '}') {
      s.get();
      return;
    }
    unexpected("',' or '}' after the value of key " + quote_for_message(key_));
  }
}

void JsonReader::parse_wanted_value(std::size_t f, Record& out) {
  ByteSource& s = *src_;
  FieldPos& pos = field_pos_[f];
  pos.line = s.line();
  pos.column = s.column();
  pos.offset = -1;
  pos.verbatim = false;
  int c = s.peek();
  auto& field = out.fields[f];
  switch (c) {
    case '"':
      field.emplace();
      pos.offset = s.offset() + 1;
      pos.verbatim = true;
      parse_string(&*field, &pos);
      return;
    case '{':
    case '[':
      fail("key " + quote_for_message(wanted_[f]) + " holds " + value_kind(c) +
               ", expected a string, number or boolean",
           "flatten the data so that this key holds plain text, or choose another key");
    case 't':
      parse_literal("true");
      field = "true";
      return;
    case 'f':
      parse_literal("false");
      field = "false";
      return;
    case 'n':
      parse_literal("null");
      field.reset();
      return;
    default:
      if (c == '-' || (c >= '0' && c <= '9')) {
        field.emplace();
        parse_number(&*field);
        return;
      }
      unexpected("a JSON value for key " + quote_for_message(wanted_[f]));
  }
}

void JsonReader::skip_scalar() {
  int c = src_->peek();
  if (c == '"') parse_string(nullptr, nullptr);
  else if (c == 't') parse_literal("true");
  else if (c == 'f') parse_literal("false");
  else if (c == 'n') parse_literal("null");
  else if (c == '-' || (c >= '0' && c <= '9')) parse_number(nullptr);
  else unexpected("a JSON value");
}

void JsonReader::skip_value() {
  ByteSource& s = *src_;
  stack_.clear();
  const bool nl = !lines_;
  for (;;) {
    // A value is expected here.
    skip_ws(nl);
    int c = s.peek();
    bool closed_empty = false;
    if (c == '{' || c == '[') {
      if (stack_.size() >= kMaxDepth) {
        fail("JSON nested more than " + std::to_string(kMaxDepth) + " levels deep", "flatten the data");
      }
      s.get();
      stack_.push_back(c == '{' ? '}' : ']');
      skip_ws(nl);
      if (s.peek() == stack_.back()) {
        s.get();
        stack_.pop_back();
        closed_empty = true;
      } else if (c == '{') {
        if (s.peek() != '"') unexpected("a key in double quotes");
        parse_string(nullptr, nullptr);
        skip_ws(nl);
        if (s.peek() != ':') unexpected("':' after the key");
        s.get();
        continue;
      } else {
        continue;
      }
    }
    if (!closed_empty) skip_scalar();
    // After a value: close containers or move to the next element.
    for (;;) {
      if (stack_.empty()) return;
      skip_ws(nl);
      c = s.peek();
      if (c == stack_.back()) {
        s.get();
        stack_.pop_back();
        continue;
      }
      if (c != ',') unexpected(std::string("',' or '") + stack_.back() + "'");
      s.get();
      if (stack_.back() == '}') {
        skip_ws(nl);
        if (s.peek() != '"') unexpected("a key in double quotes");
        parse_string(nullptr, nullptr);
        skip_ws(nl);
        if (s.peek() != ':') unexpected("':' after the key");
        s.get();
      }
      break;
    }
  }
}

void JsonReader::parse_string(std::string* out, FieldPos* pos) {
  ByteSource& s = *src_;
  const std::int64_t open_line = s.line(), open_col = s.column();
  s.get();  // '"'
  for (;;) {
    if (!s.fill()) {
      fail("unterminated string (opened at " + std::to_string(open_line) + ":" + std::to_string(open_col) + ")",
           "close the string with '\"'; a quote inside a string is written \\\"");
    }
    const char* b = s.cur();
    const char* e = s.end();
    const char* p = b;
    while (p < e && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
    if (out) out->append(b, static_cast<std::size_t>(p - b));
    s.advance(static_cast<std::size_t>(p - b));
    if (p == e) continue;
    if (*p == '"') {
      s.advance(1);
      return;
    }
    if (*p != '\\') {
      fail("JSON syntax error: unescaped control character " + describe(static_cast<unsigned char>(*p)) +
               " inside a string (opened at " + std::to_string(open_line) + ":" + std::to_string(open_col) + ")",
           "write a line break inside a string as \\n and a tab as \\t");
    }
    if (pos) pos->verbatim = false;
    s.advance(1);
    int c = s.get();
    char plain = 0;
    switch (c) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': break;
      default:
        fail("JSON syntax error: invalid escape \\" + (c < 0 ? std::string() : std::string(1, static_cast<char>(c))),
             "valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
    }
    if (plain) {
      if (out) out->push_back(plain);
      continue;
    }
    auto read_hex4 = [&]() -> char32_t {
      char32_t v = 0;
      for (int i = 0; i < 4; ++i) {
        int h = hex_value(s.peek());
        if (h < 0) unexpected("4 hex digits after \\u");
        s.get();
        v = (v << 4) | static_cast<char32_t>(h);
      }
      return v;
    };
    char32_t cp = read_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      fail("JSON syntax error: \\u escape holds a lone low surrogate", "encode the character as UTF-8 instead");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (s.peek() != '\\') fail("JSON syntax error: \\u escape holds a lone high surrogate", "encode the character as UTF-8 instead");
      s.get();
      if (s.peek() != 'u') fail("JSON syntax error: \\u escape holds a lone high surrogate", "encode the character as UTF-8 instead");
      s.get();
      char32_t lo = read_hex4();
      if (lo < 0xDC00 || lo > 0xDFFF) {
        fail("JSON syntax error: high surrogate not followed by a low surrogate", "encode the character as UTF-8 instead");
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (out) core::append_utf8(*out, cp);
  }
}

void JsonReader::parse_number(std::string* out) {
  ByteSource& s = *src_;
  auto take = [&]() {
    int c = s.get();
    if (out) out->push_back(static_cast<char>(c));
  };
  auto digits = [&](const char* what) {
    int c = s.peek();
    if (c < '0' || c > '9') unexpected(std::string("a digit ") + what);
    while (c >= '0' && c <= '9') {
      take();
      c = s.peek();
    }
  };
  if (s.peek() == '-') take();
  if (s.peek() == '0') take();
  else digits("in the number");
  if (s.peek() == '.') {
    take();
    digits("after the decimal point");
  }
  if (s.peek() == 'e' || s.peek() == 'E') {
    take();
    if (s.peek() == '+' || s.peek() == '-') take();
    digits("in the exponent");
  }
}

void JsonReader::parse_literal(const char* word) {
  for (const char* w = word; *w; ++w) {
    if (src_->peek() != static_cast<unsigned char>(*w)) unexpected(std::string("'") + word + "'");
    src_->get();
  }
}

void JsonReader::check_keys_seen() const {
  if (row_ == 0) return;
  for (std::size_t f = 0; f < wanted_.size(); ++f) {
    if (seen_[f]) continue;
    std::string found;
    for (std::size_t i = 0; i < keys_found_.size(); ++i) found += (i ? ", " : "") + quote_for_message(keys_found_[i]);
    if (keys_found_.size() == kMaxKeysListed) found += ", ...";
    throw DataError(name_ + ": no object has the key " + quote_for_message(wanted_[f]) + " (read " +
                    std::to_string(row_) + " objects); keys found: " + (found.empty() ? "none" : found) +
                    "; name one of these keys");
  }
}

}  // namespace kiln::data::detail
