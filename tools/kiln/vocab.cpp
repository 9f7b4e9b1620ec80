// kiln vocab: trains a BERT WordPiece vocabulary (vocab.txt) from text files or a text column, the
// way Hugging Face tokenizers' WordPieceTrainer does (kiln/text/wordpiece_trainer.h). The result
// loads with `kiln tokenize --vocab`.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cctype>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/core/utf8.h"
#include "kiln/data/reader.h"
#include "kiln/text/wordpiece_trainer.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct VocabFlags {
  std::vector<std::string> inputs;
  std::string out;
  std::int64_t size = 30000;
  std::int64_t min_frequency = 0;
  std::int64_t limit_alphabet = -1;  // -1 = no limit
  std::string format = "auto";
  std::string text_col = "text";
  std::string on_bad_utf8 = "error";
  std::string continuation_order;
  bool cased = false;
};

constexpr std::size_t kVocabBatch = 1 << 15;  // texts counted in parallel at a time

bool is_text_file(const std::string& path, const std::string& format) {
  if (format == "text") return true;
  if (format != "auto") return false;
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".txt" || ext == ".text";
}

// Feeds `path` to the trainer: a plain text file (one text a line, as HF's train(files) reads it)
// or a CSV/TSV/JSONL/JSON text column. Returns the number of texts.
std::int64_t feed_file(const std::string& path, const VocabFlags& f, text::WordPieceTrainer& trainer) {
  std::vector<std::string> batch;
  std::int64_t texts = 0;
  auto flush = [&]() {
    trainer.feed(batch);
    texts += static_cast<std::int64_t>(batch.size());
    batch.clear();
  };
  if (is_text_file(path, f.format)) {
    const data::BadUtf8Policy policy = data::parse_bad_utf8_policy(f.on_bad_utf8);
    std::ifstream file;
    std::istream* in = &std::cin;
    if (path != "-") {
      core::require_regular_file(path, "--input file");
      file.open(path, std::ios::binary);
      if (!file) throw IoError("--input " + path + ": cannot open the file; check its permissions");
      in = &file;
    }
    std::string line;
    std::int64_t number = 0;
    while (std::getline(*in, line)) {
      ++number;
      if (const std::size_t bad = core::find_invalid_utf8(line); bad != std::string::npos) {
        if (policy == data::BadUtf8Policy::kSkip) continue;
        if (policy == data::BadUtf8Policy::kError) {
          throw DataError(path + ":" + std::to_string(number) + ":" + std::to_string(bad + 1) +
                          ": invalid UTF-8; convert the file to UTF-8 (iconv), or pass --on-bad-utf8 replace or skip");
        }
        line = core::replace_invalid_utf8(line);
      }
      batch.push_back(std::move(line));
      if (batch.size() == kVocabBatch) flush();
    }
    if (in->bad()) throw IoError("--input " + path + ": read error; check the file and retry");
  } else {
    data::ReaderOptions ro;
    ro.format = data::parse_format(f.format);
    ro.on_bad_utf8 = data::parse_bad_utf8_policy(f.on_bad_utf8);
    auto reader = data::open_records(path, ro, {f.text_col});
    data::Record rec;
    while (reader->next(rec)) {
      batch.push_back(rec.fields[0].value_or(""));
      if (batch.size() == kVocabBatch) flush();
    }
  }
  flush();
  return texts;
}

// The "##c" pieces of a vocab.txt, in its order, as characters.
std::vector<std::string> continuation_order_of(const std::string& path, const std::string& prefix) {
  const std::string contents = core::read_file(path);
  std::vector<std::string> order;
  std::size_t pos = 0;
  while (pos < contents.size()) {
    std::size_t end = contents.find('\n', pos);
    if (end == std::string::npos) end = contents.size();
    std::string_view line(contents.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > prefix.size() && line.compare(0, prefix.size(), prefix) == 0) {
      const std::string_view rest = line.substr(prefix.size());
      std::size_t i = 0;
      if (core::find_invalid_utf8(rest) == std::string::npos) {
        (void)core::decode_utf8(rest, i);
        if (i == rest.size()) order.emplace_back(rest);
      }
    }
    pos = end + 1;
  }
  return order;
}

std::string with_commas(std::int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

void run_vocab(const VocabFlags& f) {
  if (f.size < 1) {
    throw ConfigError("--size must be >= 1 (tokens in the vocabulary, special tokens included), got " +
                      std::to_string(f.size) + "; BERT vocabularies hold 8000 to 30000");
  }
  if (f.min_frequency < 0) {
    throw ConfigError("--min-frequency must be >= 0 (0 = merge every pair that occurs), got " +
                      std::to_string(f.min_frequency));
  }
  if (f.limit_alphabet < -1 || f.limit_alphabet == 0) {
    throw ConfigError("--limit-alphabet must be >= 1 (keep that many most frequent characters), got " +
                      std::to_string(f.limit_alphabet) + "; omit it to keep every character");
  }
  if (f.format != "text" && f.format != "auto" && f.format != "csv" && f.format != "tsv" && f.format != "jsonl" &&
      f.format != "json") {
    throw ConfigError("--format must be auto, text, csv, tsv, jsonl or json, got '" + f.format + "'");
  }
  (void)data::parse_bad_utf8_policy(f.on_bad_utf8);
  if (std::filesystem::is_directory(f.out)) {
    throw ConfigError("--out " + f.out + " is a directory; pass a file path such as " +
                      (std::filesystem::path(f.out) / "vocab.txt").string());
  }
  for (const auto& in : f.inputs) {
    if (in != "-") core::require_regular_file(in, "--input file");
  }
  const auto start = std::chrono::steady_clock::now();
  core::AtomicFile out(f.out);  // fails now, not after training, when --out cannot be written
  text::WordPieceTrainerOptions o;
  o.vocab_size = f.size;
  o.min_frequency = f.min_frequency;
  if (f.limit_alphabet > 0) o.limit_alphabet = f.limit_alphabet;
  o.lowercase = !f.cased;
  if (!f.continuation_order.empty()) o.continuation_order = continuation_order_of(f.continuation_order, "##");
  text::WordPieceTrainer trainer(o);
  std::int64_t texts = 0;
  for (const auto& in : f.inputs) texts += feed_file(in, f, trainer);
  const auto counted = std::chrono::steady_clock::now();
  text::WordPieceTrainerResult r;
  try {
    r = trainer.train();
  } catch (const DataError& e) {
    // Name the flags the message's option names stand for.
    std::string m = e.what();
    for (const auto& [api, flag] : {std::pair<std::string, std::string>{"vocab_size ", "--size "},
                                    {"(limit_alphabet)", "(--limit-alphabet K)"}}) {
      if (const auto at = m.find(api); at != std::string::npos) m.replace(at, api.size(), flag);
    }
    std::string where;
    for (const auto& in : f.inputs) where += (where.empty() ? "" : ", ") + in;
    throw DataError(where + " (" + std::to_string(texts) + " texts): " + m);
  }
  out.write(text::wordpiece_vocab_text(r.tokens));
  out.commit();
  const auto end = std::chrono::steady_clock::now();
  const double count_s = std::chrono::duration<double>(counted - start).count();
  const double total_s = std::chrono::duration<double>(end - start).count();
  std::printf("vocab: %s tokens (%lld special, %lld alphabet, %lld continuation, %lld merged) from %s words "
              "(%s distinct, %s texts) in %.3f s (counting %.3f s, %d threads) -> %s\n",
              with_commas(static_cast<std::int64_t>(r.tokens.size())).c_str(), static_cast<long long>(r.special_tokens),
              static_cast<long long>(r.alphabet), static_cast<long long>(r.continuations),
              static_cast<long long>(r.tokens.size()) - r.special_tokens - r.alphabet - r.continuations,
              with_commas(r.words).c_str(), with_commas(r.distinct_words).c_str(), with_commas(texts).c_str(), total_s,
              count_s, core::threads(), f.out.c_str());
  if (static_cast<std::int64_t>(r.tokens.size()) < f.size) {
    core::warn("the corpus gave only " + std::to_string(r.tokens.size()) + " of the " + std::to_string(f.size) +
               " tokens asked for (no pair left" + (f.min_frequency > 0 ? " occurring --min-frequency times" : "") +
               "); a larger corpus" + (f.min_frequency > 0 ? " or a lower --min-frequency" : "") + " gives more");
  }
}

}  // namespace

void add_vocab(CLI::App& app) {
  auto flags = std::make_shared<VocabFlags>();
  auto* cmd = app.add_subcommand(
      "vocab",
      "Train a BERT WordPiece vocabulary (vocab.txt) as Hugging Face's WordPieceTrainer does; "
      "load it with `kiln tokenize --vocab`");
  cmd->add_option("--input", flags->inputs,
                  "Input files: .txt (one text a line) or CSV, TSV, JSONL, JSON (the --text-col column); - = stdin")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--out", flags->out, "Output vocab.txt (one token a line; written atomically)")->required();
  cmd->add_option("--size", flags->size, "Tokens in the vocabulary, the 5 special tokens included")
      ->capture_default_str();
  cmd->add_option("--min-frequency", flags->min_frequency,
                  "Merge only pairs occurring at least this often; 0 merges every pair that occurs")
      ->capture_default_str();
  cmd->add_option("--limit-alphabet", flags->limit_alphabet,
                  "Keep only the K most frequent characters (default: every character of the corpus)");
  cmd->add_flag("--cased", flags->cased,
                "Keep case and accents (default: lowercase and strip accents, as bert-base-uncased)");
  cmd->add_option("--format", flags->format,
                  "Input format: auto (by extension: .txt/.text are text), text, csv, tsv, jsonl, json")
      ->capture_default_str();
  cmd->add_option("--text-col", flags->text_col, "Column (CSV/TSV) or key (JSON) holding the text")
      ->capture_default_str();
  cmd->add_option("--on-bad-utf8", flags->on_bad_utf8, "Invalid UTF-8 in the text: error, replace or skip")
      ->capture_default_str();
  cmd->add_option("--continuation-order", flags->continuation_order,
                  "A vocab.txt whose \"##c\" pieces give the order of Kiln's (default: by code point); pass a "
                  "Hugging Face run's vocabulary to reproduce that run exactly");
  cmd->callback([flags]() { run_vocab(*flags); });
}

}  // namespace kiln::cli
