// kiln tokenize: BERT WordPiece tokens of a text column (and optionally a second one, as pairs),
// identical to Hugging Face tokenizers. One line per text on stdout: the tokens separated by
// spaces, or with --jsonl a JSON object of ids, type_ids, attention_mask, offsets and tokens.
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
  const auto start = std::chrono::steady_clock::now();
  text::WordPieceOptions o;
  o.lowercase = !f.cased;
  o.max_length = f.max_length;
  o.pad_to_max_length = f.pad;
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
  cmd->add_flag("--pad", flags->pad, "Pad every text to --max-length with [PAD] (attention mask 0)");
  cmd->add_flag("--cased", flags->cased, "Keep case and accents (default: lowercase and strip accents, as bert-base-uncased)");
  cmd->add_flag("--jsonl", flags->jsonl,
                "One JSON object per text: ids, type_ids, attention_mask, offsets (code points of the original "
                "text), tokens");
  cmd->callback([flags]() { run_tokenize(*flags); });
}

}  // namespace kiln::cli
