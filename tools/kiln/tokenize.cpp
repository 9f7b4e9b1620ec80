// kiln tokenize: BERT WordPiece tokens of a text column (and optionally a second one, as pairs),
// identical to Hugging Face tokenizers. One line per text on stdout: the tokens separated by
// spaces, or with --jsonl a JSON object of ids, type_ids, attention_mask, offsets and tokens.
// With --long-text window a text longer than --max-length is cut into overlapping windows (what
// the wordpiece featurizer's long_text: window feeds a BERT): the first window as above plus
// "overflowing": the others, as Hugging Face's Encoding.overflowing (plain output: the windows
// separated by tabs).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/data/reader.h"
#include "kiln/text/wordpiece.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct TokenizeFlags {
  std::string vocab;
  std::string input;
  std::string format = "auto";
  std::string text_col = "text";
  std::string pair_col;
  std::string on_bad_utf8 = "error";
  std::int64_t max_length = 0;
  std::string long_text = "truncate";
  std::int64_t stride = -1;  ///< -1: (max_length - 2) / 4, as the featurizer
  bool pad = false;
  bool cased = false;
  bool jsonl = false;
};

constexpr std::size_t kBatch = 1 << 15;  // records encoded in parallel between writes

std::string read_vocab_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError("--vocab " + path + ": cannot open the vocabulary file; pass a BERT vocab.txt, e.g. "
                  "--vocab \"$(kiln data fetch bert-base-uncased-vocab)\"");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// JSON string as JavaScript's JSON.stringify writes it (raw UTF-8, \uXXXX for other controls).
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<std::size_t>(n));
}

template <typename V>
void append_ints(std::string& out, const char* key, const V& values) {
  out += key;
  out += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    append_int(out, values[i]);
  }
  out += ']';
}

void append_encoding(std::string& out, const text::WordPieceEncoding& e, const text::WordPieceVocab& vocab,
                     bool jsonl) {
  if (!jsonl) {
    for (std::size_t i = 0; i < e.size(); ++i) {
      if (i > 0) out += ' ';
      out += vocab.token(e.ids[i]);
    }
    out += '\n';
    return;
  }
  append_ints(out, "{\"ids\":", e.ids);
  append_ints(out, ",\"type_ids\":", e.type_ids);
  append_ints(out, ",\"attention_mask\":", e.attention_mask);
  out += ",\"offsets\":[";
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (i > 0) out += ',';
    out += '[';
    append_int(out, e.offsets[i][0]);
    out += ',';
    append_int(out, e.offsets[i][1]);
    out += ']';
  }
  out += "],\"tokens\":[";
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, vocab.token(e.ids[i]));
  }
  out += "]}\n";
}

// The windows of a full (untruncated, unpadded) single-text encoding `e`: [CLS] window [SEP] each,
// padded to `pad_to` tokens when > 0.
void cut_windows(const text::WordPieceEncoding& e, std::size_t width, std::size_t stride, std::int64_t pad_to,
                 const text::WordPieceVocab& vocab, std::vector<text::WordPieceEncoding>& out) {
  const std::size_t n = e.size() - 2;  // content tokens between [CLS] and [SEP]
  const auto ranges = text::window_ranges(n, width, stride);
  out.resize(ranges.size());
  for (std::size_t w = 0; w < ranges.size(); ++w) {
    auto& x = out[w];
    x.clear();
    const auto [a, b] = ranges[w];
    const auto push = [&x](std::int32_t id, std::int32_t mask, std::array<std::int32_t, 2> offset) {
      x.ids.push_back(id);
      x.type_ids.push_back(0);
      x.attention_mask.push_back(mask);
      x.offsets.push_back(offset);
    };
    push(e.ids.front(), 1, e.offsets.front());
    for (std::size_t k = a; k < b; ++k) push(e.ids[k + 1], 1, e.offsets[k + 1]);
    push(e.ids.back(), 1, e.offsets.back());
    while (static_cast<std::int64_t>(x.size()) < pad_to) push(vocab.pad_id(), 0, {0, 0});
  }
}

void append_windows(std::string& out, const std::vector<text::WordPieceEncoding>& windows,
                    const text::WordPieceVocab& vocab, bool jsonl) {
  if (!jsonl) {
    for (std::size_t w = 0; w < windows.size(); ++w) {
      append_encoding(out, windows[w], vocab, false);
      out.back() = w + 1 < windows.size() ? '\t' : '\n';
    }
    return;
  }
  append_encoding(out, windows.front(), vocab, true);
  out.resize(out.size() - 2);  // reopen the object: drop "}\n"
  out += ",\"overflowing\":[";
  for (std::size_t w = 1; w < windows.size(); ++w) {
    if (w > 1) out += ',';
    append_encoding(out, windows[w], vocab, true);
    out.pop_back();  // "\n"
  }
  out += "]}\n";
}

void run_tokenize(const TokenizeFlags& f) {
  if (f.max_length < 0 || (f.max_length > 0 && f.max_length < 3)) {
    throw ConfigError("--max-length must be >= 3 (room for [CLS], [SEP] and one token; pairs need [SEP] twice), got " +
                      std::to_string(f.max_length));
  }
  if (f.pad && f.max_length == 0) {
    throw ConfigError("--pad pads to --max-length: add --max-length N (e.g. 128) or drop --pad");
  }
  if (!f.pair_col.empty() && f.pair_col == f.text_col) {
    throw ConfigError("--pair-col names the same column as --text-col ('" + f.text_col + "'); pass the second text's column");
  }
  const bool windows = f.long_text == "window";
  if (!windows && f.long_text != "truncate") {
    throw ConfigError("--long-text must be truncate or window, got '" + f.long_text + "'");
  }
  if (!windows && f.stride >= 0) {
    throw ConfigError("--stride applies to --long-text window (windows overlap by --stride tokens); add --long-text "
                      "window or drop --stride");
  }
  std::size_t width = 0, stride = 0;
  if (windows) {
    if (f.max_length == 0) {
      throw ConfigError("--long-text window cuts texts into windows of --max-length tokens: add --max-length N (e.g. 128)");
    }
    if (!f.pair_col.empty()) {
      throw ConfigError("--long-text window cuts single texts; with --pair-col, pairs are truncated (longest_first): "
                        "drop --pair-col or --long-text window");
    }
    width = static_cast<std::size_t>(f.max_length - 2);
    const std::int64_t s = f.stride >= 0 ? f.stride : (f.max_length - 2) / 4;
    if (s >= f.max_length - 2) {
      throw ConfigError("--stride must be in [0, --max-length - 2 = " + std::to_string(f.max_length - 2) +
                        ") tokens (windows overlap by --stride and advance by --max-length - 2 - --stride), got " +
                        std::to_string(s));
    }
    stride = static_cast<std::size_t>(s);
  }
  const auto start = std::chrono::steady_clock::now();
  text::WordPieceOptions o;
  o.lowercase = !f.cased;
  o.max_length = windows ? 0 : f.max_length;  // windows cover every token
  o.pad_to_max_length = f.pad && !windows;
  auto vocab = std::make_shared<const text::WordPieceVocab>(
      text::WordPieceVocab::parse(read_vocab_file(f.vocab), "--vocab " + f.vocab));
  const text::WordPieceTokenizer tokenizer(vocab, o);

  data::ReaderOptions ro;
  ro.format = data::parse_format(f.format);
  ro.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
  std::vector<std::string> wanted = {f.text_col};
  if (!f.pair_col.empty()) wanted.push_back(f.pair_col);
  auto reader = data::open_records(f.input, ro, wanted);

  const bool pairs = !f.pair_col.empty();
  std::vector<std::string> a, b;
  const std::size_t chunks = static_cast<std::size_t>(core::threads());
  std::vector<std::string> outs(chunks);
  std::vector<text::WordPieceScratch> scratch(chunks);
  std::vector<text::WordPieceEncoding> encodings(chunks);
  std::vector<std::vector<text::WordPieceEncoding>> window_sets(chunks);
  std::int64_t texts = 0, tokens = 0;
  std::vector<std::int64_t> chunk_tokens(chunks);
  data::Record rec;
  bool more = true;
  while (more) {
    a.clear();
    b.clear();
    while (a.size() < kBatch && (more = reader->next(rec))) {
      a.push_back(rec.fields[0].value_or(""));
      if (pairs) b.push_back(rec.fields[1].value_or(""));
    }
    if (a.empty()) break;
    core::parallel_chunks(
        a.size(),
        [&](std::size_t begin, std::size_t end, std::size_t c) {
          std::string& out = outs[c];
          out.clear();
          chunk_tokens[c] = 0;
          for (std::size_t i = begin; i < end; ++i) {
            const std::string_view second = pairs ? std::string_view(b[i]) : std::string_view();
            tokenizer.encode(a[i], pairs ? &second : nullptr, encodings[c], scratch[c]);
            if (windows) {
              cut_windows(encodings[c], width, stride, f.pad ? f.max_length : 0, *vocab, window_sets[c]);
              for (const auto& w : window_sets[c]) chunk_tokens[c] += static_cast<std::int64_t>(w.size());
              append_windows(out, window_sets[c], *vocab, f.jsonl);
              continue;
            }
            chunk_tokens[c] += static_cast<std::int64_t>(encodings[c].size());
            append_encoding(out, encodings[c], *vocab, f.jsonl);
          }
        },
        static_cast<int>(chunks));
    for (std::size_t c = 0; c < core::chunk_count(a.size(), static_cast<int>(chunks)); ++c) {
      std::fwrite(outs[c].data(), 1, outs[c].size(), stdout);
      tokens += chunk_tokens[c];
    }
    texts += static_cast<std::int64_t>(a.size());
  }
  std::fflush(stdout);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  core::info("tokenize: " + std::to_string(texts) + " texts, " + std::to_string(tokens) + " tokens, " +
             std::to_string(s) + " s (" + std::to_string(core::threads()) + " threads)");
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto flags = std::make_shared<TokenizeFlags>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "BERT WordPiece tokens of a text column, identical to Hugging Face tokenizers: one line per text "
      "(tokens, or --jsonl ids/type_ids/attention_mask/offsets/tokens)");
  cmd->add_option("--vocab", flags->vocab, "BERT vocab.txt (e.g. from `kiln data fetch bert-base-uncased-vocab`)")
      ->required();
  cmd->add_option("--input", flags->input, "Input file (CSV, TSV, JSONL or JSON; - = stdin)")->required();
  cmd->add_option("--format", flags->format, "Input format: auto (by extension), csv, tsv, jsonl, json")
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col, "Column (CSV/TSV) or key (JSON) holding the text")
      ->capture_default_str();
  cmd->add_option("--pair-col", flags->pair_col,
                  "Column holding a second text: encode pairs as [CLS] A [SEP] B [SEP] (type ids 0 then 1)");
  cmd->add_option("--on-bad-utf8", flags->on_bad_utf8, "Invalid UTF-8 in the text: error, replace or skip")
      ->capture_default_str();
  cmd->add_option("--max-length", flags->max_length,
                  "Truncate to N tokens, special tokens included (longest_first for pairs); 0 = no limit")
      ->capture_default_str();
  cmd->add_option("--long-text", flags->long_text,
                  "A text longer than --max-length: truncate, or window (overlapping windows of --max-length "
                  "tokens, [CLS] and [SEP] each; JSON lines add \"overflowing\": the windows after the first)")
      ->capture_default_str();
  cmd->add_option("--stride", flags->stride,
                  "With --long-text window: tokens consecutive windows share, in [0, --max-length - 2) "
                  "(default (--max-length - 2) / 4, as the wordpiece featurizer)");
  cmd->add_flag("--pad", flags->pad, "Pad every text (every window) to --max-length with [PAD] (attention mask 0)");
  cmd->add_flag("--cased", flags->cased, "Keep case and accents (default: lowercase and strip accents, as bert-base-uncased)");
  cmd->add_flag("--jsonl", flags->jsonl,
                "One JSON object per text: ids, type_ids, attention_mask, offsets (code points of the original "
                "text), tokens");
  cmd->callback([flags]() { run_tokenize(*flags); });
}

}  // namespace kiln::cli
