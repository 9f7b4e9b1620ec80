#include "dataset_converters.h"

#include <algorithm>
#include <regex>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <iterator>
#include <map>
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

const std::vector<std::string>& wordnet_lexnames() {
  static const std::vector<std::string> kNames = {
      "adj.all",           "adj.pert",         "adv.all",         "noun.Tops",
      "noun.act",          "noun.animal",      "noun.artifact",   "noun.attribute",
      "noun.body",         "noun.cognition",   "noun.communication", "noun.event",
      "noun.feeling",      "noun.food",        "noun.group",      "noun.location",
      "noun.motive",       "noun.object",      "noun.person",     "noun.phenomenon",
      "noun.plant",        "noun.possession",  "noun.process",    "noun.quantity",
      "noun.relation",     "noun.shape",       "noun.state",      "noun.substance",
      "noun.time",         "verb.body",        "verb.change",     "verb.cognition",
      "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
      "verb.creation",     "verb.emotion",     "verb.motion",     "verb.perception",
      "verb.possession",   "verb.social",      "verb.stative",    "verb.weather",
      "adj.ppl",
  };
  return kNames;
}

std::vector<LabeledText> parse_wordnet_data(std::string_view content, char pos, const std::string& where) {
  const auto& names = wordnet_lexnames();
  const std::string prefix = pos == 'n' ? "noun." : pos == 'v' ? "verb." : pos == 'a' ? "adj." : "adv.";
  std::vector<LabeledText> rows;
  int line_no = 0;
  for_each_line(content, [&](std::string_view line) {
    ++line_no;
    if (line.substr(0, 2) == "  " || trim(line).empty()) return;  // license header
    auto fail = [&](const std::string& what) {
      std::string shown(line.substr(0, 80));
      if (line.size() > 80) shown += "...";
      throw DataError(where + ":" + std::to_string(line_no) + ": " + what + " in synset line '" + shown +
                      "'; the file is corrupt or not a WordNet 3.0 data file (fetch again with --force)");
    };
    const std::size_t bar = line.find('|');
    if (bar == std::string_view::npos) fail("no '|' before the gloss");
    const auto fields = split_ws(line.substr(0, bar));
    if (fields.size() < 6) fail("fewer than 6 fields before the '|'");
    const auto all_digits = [](std::string_view f) {
      return std::all_of(f.begin(), f.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (fields[0].size() != 8 || !all_digits(fields[0]))
      fail("synset_offset '" + std::string(fields[0]) + "' is not 8 digits");
    if (fields[1].size() != 2 || !all_digits(fields[1]) || std::stoi(std::string(fields[1])) >= 45)
      fail("lex_filenum '" + std::string(fields[1]) + "' is not a 2-digit number in 00..44");
    const std::string& label = names[static_cast<std::size_t>(std::stoi(std::string(fields[1])))];
    const std::string_view ss_type = fields[2];
    const bool type_ok = ss_type.size() == 1 && (ss_type[0] == pos || (pos == 'a' && ss_type[0] == 's'));
    if (!type_ok)
      fail("ss_type '" + std::string(ss_type) + "' does not belong in this file (expected '" +
           std::string(1, pos) + (pos == 'a' ? "' or 's'" : "'") + ")");
    if (label.compare(0, prefix.size(), prefix) != 0)
      fail("lex_filenum " + std::string(fields[1]) + " (" + label + ") does not belong in this file");
    const std::string_view gloss = trim(line.substr(bar + 1));
    if (gloss.empty()) fail("empty gloss");
    rows.push_back({core::replace_invalid_utf8(gloss), label});
  });
  return rows;
}

std::vector<LabeledText> convert_wordnet(const fs::path& dir) {
  std::vector<LabeledText> rows;
  for (const auto& [file, pos] : {std::pair<const char*, char>{"data.noun", 'n'},
                                  {"data.verb", 'v'},
                                  {"data.adj", 'a'},
                                  {"data.adv", 'r'}}) {
    const fs::path path = dir / file;
    auto part = parse_wordnet_data(read_or_data_error(path, "WordNet data file"), pos, path.string());
    rows.insert(rows.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return rows;
}

std::vector<DictdIndexEntry> parse_dictd_index(std::string_view content, const std::string& where) {
  static constexpr std::string_view kDigits =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<DictdIndexEntry> out;
  int line_no = 0;
  for_each_line(content, [&](std::string_view line) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) return;
    auto fail = [&](const std::string& what) {
      throw DataError(where + ":" + std::to_string(line_no) + ": " + what + " in index line '" +
                      std::string(line.substr(0, 80)) +
                      "'; expected 'HEADWORD<TAB>OFFSET<TAB>LENGTH' (fetch again with --force)");
    };
    const std::size_t t1 = line.find('\t');
    const std::size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string_view::npos || line.find('\t', t2 + 1) != std::string_view::npos)
      fail("not 3 TAB-separated fields");
    auto number = [&](std::string_view digits, const char* what) {
      if (digits.empty() || digits.size() > 10)
        fail(std::string(what) + " '" + std::string(digits) + "' is not 1 to 10 base64 digits");
      std::uint64_t n = 0;
      for (const char c : digits) {
        const std::size_t d = kDigits.find(c);
        if (d == std::string_view::npos)
          fail(std::string(what) + " '" + std::string(digits) +
               "' has a character outside dictd's base64 digits");
        n = n * 64 + d;
      }
      return n;
    };
    DictdIndexEntry e;
    e.headword = std::string(line.substr(0, t1));
    e.offset = number(line.substr(t1 + 1, t2 - t1 - 1), "offset");
    e.length = number(line.substr(t2 + 1), "length");
    e.line = line_no;
    out.push_back(std::move(e));
  });
  return out;
}

FoldocRow foldoc_entry_row(std::string_view entry) {
  // Paragraphs of the body: the headword lines end at the first blank line.
  std::vector<std::string> paragraphs;
  bool in_body = false;
  std::string cur;
  auto flush = [&]() {
    if (!cur.empty()) paragraphs.push_back(std::move(cur));
    cur.clear();
  };
  for_each_line(entry, [&](std::string_view line) {
    const std::string_view t = trim(line);
    if (t.empty()) {
      if (in_body) flush();
      in_body = true;
      return;
    }
    if (!in_body) return;
    if (!cur.empty()) cur += ' ';
    cur.append(t.data(), t.size());
  });
  flush();
  // Removes "<subjects>" opening `p` (after an optional "N. "); returns the subjects, or "".
  auto take_tag = [](std::string& p) -> std::string {
    std::size_t i = 0;
    while (i < p.size() && p[i] >= '0' && p[i] <= '9') ++i;
    std::size_t start = (i > 0 && i + 1 < p.size() && p[i] == '.' && p[i + 1] == ' ') ? i + 2 : 0;
    if (start >= p.size() || p[start] != '<') return {};
    const std::size_t close = p.find('>', start);
    if (close == std::string::npos) return {};
    const std::string tag = p.substr(start + 1, close - start - 1);
    const bool subject_like = !tag.empty() && std::all_of(tag.begin(), tag.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ' ' || c == ',' || c == '-';
    });
    if (!subject_like) return {};
    std::size_t after = close + 1;
    while (after < p.size() && p[after] == ' ') ++after;
    p.erase(start, after - start);
    return tag;
  };
  if (!paragraphs.empty()) {
    const std::string& last = paragraphs.back();
    const bool date_only =
        last.size() == 12 && last.front() == '(' && last.back() == ')' && last[5] == '-' && last[8] == '-';
    if (date_only) paragraphs.pop_back();
  }
  FoldocRow out;
  for (std::size_t k = 0; k < paragraphs.size(); ++k) {
    const std::string tag = take_tag(paragraphs[k]);
    if (k == 0 && !tag.empty()) {
      out.has_subject = true;
      out.row.label = std::string(trim(std::string_view(tag).substr(0, tag.find(','))));
      if (out.row.label.empty()) out.has_subject = false;
    }
    if (paragraphs[k].empty()) continue;
    if (!out.row.text.empty()) out.row.text += ' ';
    out.row.text += paragraphs[k];
  }
  if (out.row.text.empty()) out.has_subject = false;
  return out;
}

FoldocConversion convert_foldoc(const fs::path& dict_file, const fs::path& index_file,
                                std::size_t min_class_size) {
  const std::string dict = read_or_data_error(dict_file, "FOLDOC dictionary");
  const auto index = parse_dictd_index(read_or_data_error(index_file, "FOLDOC index"), index_file.string());
  FoldocConversion out;
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  std::vector<LabeledText> tagged;
  for (const auto& e : index) {
    if (e.headword.rfind("00-database-", 0) == 0 || e.headword.rfind("00database", 0) == 0) continue;
    const std::string where = index_file.string() + ":" + std::to_string(e.line);
    if (e.offset > dict.size() || e.length > dict.size() - e.offset)
      throw DataError(where + ": entry '" + e.headword + "' at bytes " + std::to_string(e.offset) + "+" +
                      std::to_string(e.length) + " lies past the end of " + dict_file.string() + " (" +
                      std::to_string(dict.size()) +
                      " bytes); the files do not belong together or one is "
                      "truncated (fetch again with --force)");
    if (!seen.insert({e.offset, e.length}).second) continue;  // another headword of the same entry
    ++out.entries;
    const std::string_view entry(dict.data() + e.offset, e.length);
    if (core::find_invalid_utf8(entry) != std::string_view::npos)
      throw DataError(where + ": entry '" + e.headword + "' is not valid UTF-8 in " + dict_file.string());
    FoldocRow r = foldoc_entry_row(entry);
    if (!r.has_subject) {
      ++out.without_subject;
      continue;
    }
    tagged.push_back(std::move(r.row));
  }
  std::map<std::string, std::size_t> sizes;
  for (const auto& r : tagged) ++sizes[r.label];
  for (const auto& [label, n] : sizes)
    if (n < min_class_size) {
      ++out.small_classes;
      out.in_small_classes += n;
    }
  for (auto& r : tagged)
    if (sizes[r.label] >= min_class_size) out.rows.push_back(std::move(r));
  return out;
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
