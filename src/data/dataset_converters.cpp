#include "dataset_converters.h"

#include <algorithm>
#include <regex>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/utf8.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f(line) for each line of `s` (without its '\n'; a final line without '\n' included).
template <typename F>
void for_each_line(std::string_view s, F&& f) {
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    f(s.substr(start, end - start));
    start = end + 1;
  }
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string read_or_data_error(const fs::path& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw DataError(what + " " + path.string() +
                    " is missing; the package layout is not the expected one (fetch again with --force, "
                    "or report the package version)");
  return core::read_file(path);
}

// Windows-1252 code points for bytes 0x80..0x9F; 0 = undefined (kept as the C1 control).
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80-87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,       // 88-8F
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90-97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,  // 98-9F
};

}  // namespace

std::string brown_sentence_text(std::string_view line) {
  static const std::set<std::string_view> kClosing = {",", ".", ";", ":", "?", "!", ")", "]", "}"};
  static const std::set<std::string_view> kOpening = {"(", "[", "{"};
  std::string out;
  bool glue_next = true;  // no space before the next word
  bool single_open = false;
  auto emit = [&](std::string_view w, bool space_before) {
    if (space_before && !glue_next && !out.empty()) out += ' ';
    out.append(w.data(), w.size());
  };
  for (std::string_view tok : split_ws(line)) {
    const std::size_t slash = tok.rfind('/');
    const std::string_view word = slash == std::string_view::npos ? tok : tok.substr(0, slash);
    if (word.empty()) continue;
    if (word == "``") {
      emit("\"", true);
      glue_next = true;
    } else if (word == "''") {
      emit("\"", false);
      glue_next = false;
    } else if (word == "'") {
      if (!single_open) {
        emit("'", true);
        glue_next = true;
      } else {
        emit("'", false);
        glue_next = false;
      }
      single_open = !single_open;
    } else if (kClosing.count(word) != 0) {
      emit(word, false);
      glue_next = false;
    } else if (kOpening.count(word) != 0) {
      emit(word, true);
      glue_next = true;
    } else {
      emit(word, true);
      glue_next = false;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_brown_categories(std::string_view content,
                                                                        const std::string& where) {
  std::vector<std::pair<std::string, std::string>> out;
  int line_no = 0;
  for_each_line(content, [&](std::string_view line) {
    ++line_no;
    const auto fields = split_ws(line);
    if (fields.empty()) return;
    if (fields.size() != 2)
      throw DataError(where + ":" + std::to_string(line_no) + ": expected 'FILE_ID CATEGORY', got '" +
                      std::string(trim(line)) + "'");
    out.emplace_back(std::string(fields[0]), std::string(fields[1]));
  });
  return out;
}

std::vector<LabeledText> convert_brown(const fs::path& root) {
  const fs::path cats_path = root / "cats.txt";
  const auto cats = parse_brown_categories(read_or_data_error(cats_path, "Brown category list"),
                                           cats_path.string());
  std::vector<LabeledText> rows;
  for (const auto& entry : cats) {
    const std::string& file_id = entry.first;
    const std::string& category = entry.second;
    if (file_id.find('/') != std::string::npos || file_id == "." || file_id == "..")
      throw DataError(cats_path.string() + ": file id '" + file_id + "' is not a plain file name");
    const std::string content = read_or_data_error(root / file_id, "Brown corpus file");
    for_each_line(content, [&](std::string_view line) {
      if (trim(line).empty()) return;
      rows.push_back({core::replace_invalid_utf8(brown_sentence_text(line)), category});
    });
  }
  return rows;
}

std::vector<std::string> split_fortunes(std::string_view content) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&]() {
    // Drop leading blank lines, keep the first line's indentation; drop trailing whitespace.
    std::size_t start = 0;
    for (std::size_t i = 0; i < cur.size(); ++i) {
      if (cur[i] == '\n') start = i + 1;
      else if (!is_space(cur[i])) break;
    }
    std::string_view entry(cur);
    entry.remove_prefix(std::min(start, entry.size()));
    while (!entry.empty() && is_space(entry.back())) entry.remove_suffix(1);
    if (!trim(entry).empty()) out.emplace_back(entry);
    cur.clear();
  };
  for_each_line(content, [&](std::string_view line) {
    if (line == "%" || line == "%\r") {
      flush();
      return;
    }
    cur.append(line.data(), line.size());
    cur += '\n';
  });
  flush();
  return out;
}

std::vector<LabeledText> convert_fortunes(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw DataError("fortune directory " + dir.string() +
                    " is missing; the package layout is not the expected one");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_symlink() || !e.is_regular_file()) continue;
    const std::string ext = e.path().extension().string();
    if (ext == ".dat" || ext == ".u8") continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<LabeledText> rows;
  for (const auto& f : files) {
    const std::string label = f.filename().string();
    for (auto& entry : split_fortunes(core::read_file(f)))
      rows.push_back({core::replace_invalid_utf8(entry), label});
  }
  return rows;
}

std::string decode_mail_bytes(std::string_view bytes) {
  if (core::find_invalid_utf8(bytes) == std::string_view::npos) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    if (b < 0x80) {
      out += ch;
    } else if (b < 0xA0 && kCp1252High[b - 0x80] != 0) {
      core::append_utf8(out, kCp1252High[b - 0x80]);
    } else {
      core::append_utf8(out, static_cast<char32_t>(b));
    }
  }
  return out;
}

std::vector<LabeledText> convert_spamassassin(const fs::path& data_dir) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec))
    throw DataError("SpamAssassin data directory " + data_dir.string() +
                    " is missing; the package layout is not the expected one");
  std::vector<fs::path> groups;
  for (const auto& e : fs::directory_iterator(data_dir))
    if (e.is_directory()) groups.push_back(e.path());
  std::sort(groups.begin(), groups.end());
  std::vector<LabeledText> rows;
  for (const auto& g : groups) {
    std::vector<fs::path> mails;
    for (const auto& e : fs::directory_iterator(g))
      if (e.is_regular_file() && e.path().extension() == ".txt") mails.push_back(e.path());
    std::sort(mails.begin(), mails.end());
    const std::string label = g.filename().string();
    for (const auto& m : mails) rows.push_back({decode_mail_bytes(core::read_file(m)), label});
  }
  return rows;
}

std::string csv_field(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out;
  out.reserve(field.size() + 8);
  out += '"';
  for (const char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string convert_bert_vocab(std::string_view json, const std::string& where) {
  static const std::string kWordStart = "\xE2\x96\x81";  // U+2581
  static const std::regex kSpecial(R"(\[(PAD|UNK|CLS|SEP|MASK|unused[0-9]+)\])");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(where + ": not valid JSON (" + e.what() + "); the package may be corrupt, fetch it again with --force");
  }
  if (!j.is_array()) throw DataError(where + ": expected a JSON array of tokens, got " + std::string(j.type_name()));
  std::string out;
  std::unordered_set<std::string> seen;
  for (std::size_t id = 0; id < j.size(); ++id) {
    if (!j[id].is_string()) throw DataError(where + ": token " + std::to_string(id) + " is not a string");
    const std::string t = j[id].get<std::string>();
    std::string tok;
    if (id == 1 && t == kWordStart) {
      tok = "[unused0]";
    } else if (std::regex_match(t, kSpecial)) {
      tok = t;
    } else if (t.compare(0, kWordStart.size(), kWordStart) == 0) {
      tok = t.substr(kWordStart.size());
    } else {
      tok = "##" + t;
    }
    if (tok.empty() || tok.find_first_of("\n\r") != std::string::npos) {
      throw DataError(where + ": token " + std::to_string(id) + " (" + t + ") converts to an empty or multi-line token");
    }
    if (!seen.insert(tok).second) {
      throw DataError(where + ": token " + std::to_string(id) + " converts to '" + tok + "', which an earlier id has");
    }
    out += tok;
    out += '\n';
  }
  const std::pair<std::size_t, const char*> specials[] = {{0, "[PAD]"}, {100, "[UNK]"}, {101, "[CLS]"}, {102, "[SEP]"}, {103, "[MASK]"}};
  for (const auto& [id, name] : specials) {
    if (j.size() <= id || j[id] != name) {
      throw DataError(where + ": expected " + name + " at id " + std::to_string(id) + " as in bert-base-uncased");
    }
  }
  return out;
}

std::string to_csv(const std::vector<LabeledText>& rows) {
  std::size_t total = 16;
  for (const auto& r : rows) total += r.text.size() + r.label.size() + 8;
  std::string out;
  out.reserve(total);
  out += "text,label\n";
  for (const auto& r : rows) {
    out += csv_field(r.text);
    out += ',';
    out += csv_field(r.label);
    out += '\n';
  }
  return out;
}

std::size_t count_classes(const std::vector<LabeledText>& rows) {
  std::set<std::string_view> labels;
  for (const auto& r : rows) labels.insert(r.label);
  return labels.size();
}

}  // namespace kiln::data
