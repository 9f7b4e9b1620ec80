// kiln pretrain: masked-language-model pretraining of a BERT from scratch on unlabelled text; writes
// a Hugging Face-layout directory (OUT/model) that `kiln train --model bert --init` fine-tunes.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/progress.h"
#include "kiln/data/reader.h"
#include "kiln/nn/bert.h"
#include "kiln/text/wordpiece.h"
#include "kiln/train/pretrain.h"
#include "dist_flags.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

struct PretrainFlags {
  std::vector<std::string> inputs;
  std::string vocab, out, preset = "mini", text_col = "text", format = "auto", device = "cpu";
  int64_t seq_len = 128;
  bool whole_word = false, cased = false, resume = false;
  double hidden_dropout = 0.1, attention_dropout = 0.1;
  train::PretrainOptions options;
  DistFlags dist;
};

bool is_plain_text(const std::string& path, const std::string& format) {
  if (format != "auto") return format == "lines";
  const auto ext = fs::path(path).extension().string();
  return ext == ".txt" || ext == ".text" || ext.empty();
}

// The texts of every input: a plain text file gives one text per non-empty line, a CSV/TSV/JSONL/
// JSON file its text column.
std::vector<std::string> read_texts(const PretrainFlags& f) {
  std::vector<std::string> texts;
  for (const auto& path : f.inputs) {
    core::require_regular_file(path, "--input");
    if (is_plain_text(path, f.format)) {
      std::ifstream in(path, std::ios::binary);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) texts.push_back(std::move(line));
      }
      continue;
    }
    data::ReaderOptions ro;
    ro.format = data::parse_format(f.format);
    ro.on_bad_utf8 = data::BadUtf8Policy::kReplace;
    auto column = data::read_column(path, ro, f.text_col);
    for (auto& t : column) texts.push_back(std::move(t));
  }
  return texts;
}

std::string read_vocab(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError("--vocab " + path + ": cannot open the vocabulary file; pass a BERT vocab.txt, e.g. --vocab "
                  "\"$(kiln data fetch bert-base-uncased-vocab)\"");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void pretrain_as_rank(PretrainFlags& f, train::DataParallel* dp);

void run_pretrain(PretrainFlags& f, CLI::App& cmd) {
  if (f.vocab.empty()) {
    throw ConfigError("--vocab is required: pass a BERT vocab.txt (e.g. --vocab \"$(kiln data fetch "
                      "bert-base-uncased-vocab)\"); learning one from the input needs the WordPiece trainer "
                      "(`kiln vocab`), which this build does not have yet");
  }
  if (f.options.steps > 0 && cmd.count("--epochs") > 0) {
    throw ConfigError("--steps " + std::to_string(f.options.steps) + " conflicts with --epochs " +
                      std::to_string(f.options.epochs) + ": give one of them");
  }
  const DistPlan plan = f.dist.resolve();
  if (plan.parallel()) {
    train::TrainerOptions t;  // the checks kiln train makes: cpu, a global batch >= the job
    t.device = f.device;
    t.batch_size = f.options.batch_size;
    check_data_parallel(t, plan);
  }
  if (plan.role == DistPlan::Role::kLauncher) {
    launch_workers(plan);
    return;
  }
  std::unique_ptr<train::DataParallel> dp;
  if (plan.role == DistPlan::Role::kWorker) dp = join_as_worker(plan);
  run_as_rank(dp.get(), [&] { pretrain_as_rank(f, dp.get()); });
}

void pretrain_as_rank(PretrainFlags& f, train::DataParallel* dp) {
  const bool rank0 = !dp || dp->rank() == 0;
  const std::string vocab_text = read_vocab(f.vocab);
  auto vocab = std::make_shared<const text::WordPieceVocab>(text::WordPieceVocab::parse(vocab_text, "--vocab " + f.vocab));
  const int32_t mask_id = vocab->find("[MASK]");
  if (mask_id < 0) {
    throw ConfigError("--vocab " + f.vocab + ": the vocabulary has no [MASK] token; masked-LM pretraining needs one "
                      "(add a line [MASK] to the file)");
  }
  text::WordPieceOptions wo;
  wo.lowercase = !f.cased;
  const text::WordPieceTokenizer tokenizer(vocab, wo);

  nn::BertOptions bo;
  nn::apply_bert_preset(f.preset, bo.config);
  bo.config.vocab_size = vocab->size();
  bo.config.pad_token_id = vocab->pad_id();
  bo.config.max_position_embeddings = std::max<int64_t>(512, f.seq_len);
  bo.config.hidden_dropout_prob = f.hidden_dropout;
  bo.config.attention_probs_dropout_prob = f.attention_dropout;
  bo.num_classes = 2;
  bo.validate();

  const auto texts = read_texts(f);
  if (texts.empty()) throw DataError("--input: no text in " + std::to_string(f.inputs.size()) + " file(s)");
  std::vector<std::vector<int32_t>> docs;
  docs.reserve(texts.size());
  text::WordPieceScratch scratch;
  text::WordPieceEncoding enc;
  int64_t tokens = 0;
  for (const auto& t : texts) {
    tokenizer.encode(t, nullptr, enc, scratch);
    // Drop the template's [CLS] and [SEP]: packing adds them per sequence.
    docs.emplace_back(enc.ids.begin() + 1, enc.ids.end() - 1);
    tokens += static_cast<int64_t>(docs.back().size());
  }
  const auto sequences = train::pack_sequences(docs, f.seq_len, vocab->cls_id(), vocab->sep_id(), vocab->pad_id());
  core::info(std::to_string(texts.size()) + " texts, " + std::to_string(tokens) + " tokens, " +
             std::to_string(sequences.size(0)) + " sequences of " + std::to_string(f.seq_len) + "; BERT-" + f.preset +
             " (" + std::to_string(bo.config.num_hidden_layers) + " layers, hidden " +
             std::to_string(bo.config.hidden_size) + ")");

  train::MlmVocab mv;
  mv.size = vocab->size();
  mv.mask_id = mask_id;
  mv.pad_id = vocab->pad_id();
  for (const auto& [tok, id] : vocab->special_tokens()) mv.special_ids.push_back(id);
  mv.continuation.resize(static_cast<std::size_t>(vocab->size()));
  for (int64_t id = 0; id < vocab->size(); ++id) mv.continuation[static_cast<std::size_t>(id)] = vocab->token(id).substr(0, 2) == "##";

  torch::manual_seed(f.options.seed);
  auto bert = std::make_shared<nn::BertModel>(bo);
  train::MlmModel model(bert);

  train::PretrainOptions o = f.options;
  o.masking.whole_word = f.whole_word;
  o.run_dir = f.out;
  o.resume = f.resume;
  o.device = f.device;
  if (rank0) fs::create_directories(f.out);
  std::unique_ptr<core::ProgressBar> bar;
  train::PretrainCallbacks cb;
  cb.parallel = dp;
  int64_t last_line = 0;
  if (rank0) cb.on_step = [&](const train::PretrainStep& s) {
    if (!bar) bar = std::make_unique<core::ProgressBar>("pretrain", s.steps);
    char buf[128];
    std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e %.0f tok/s", s.loss, s.lr, s.tokens_per_second);
    if (bar->live()) {
      bar->update(s.step, buf);
    } else if (s.step == s.steps || s.step - last_line >= std::max<int64_t>(1, s.steps / 20)) {
      last_line = s.step;
      core::info("step " + std::to_string(s.step) + "/" + std::to_string(s.steps) + "  " + buf);
    }
  };
  cb.on_warning = [](const std::string& w) { core::warn(w); };
  const auto result = train::pretrain_mlm(model, sequences, mv, o, cb);
  if (!rank0) return;  // rank 0 writes the model
  if (bar && bar->live()) bar->finish();
  if (!result.finished) {
    core::info("stopped at step " + std::to_string(result.steps) + "; continue with --resume");
    return;
  }
  const fs::path model_dir = fs::path(f.out) / "model";
  nn::save_hf_mlm_checkpoint(model.bert(), model.head(), vocab->to_text(), model_dir);
  char buf[160];
  std::snprintf(buf, sizeof buf, "masked-LM loss %.4f (first step) -> %.4f (mean of the last steps), %lld steps",
                result.first_loss, result.mean_last_loss, static_cast<long long>(result.steps));
  std::cout << buf << "\n";
  std::cout << "pretrained model: " << model_dir.string() << " (fine-tune: kiln train --model bert --init "
            << model_dir.string() << " ...)\n";
}

}  // namespace

void add_pretrain(CLI::App& app) {
  auto f = std::make_shared<PretrainFlags>();
  auto* cmd = app.add_subcommand("pretrain", ml_verb_description("pretrain"));
  cmd->add_option("--input", f->inputs, "Text files (one text a line) or CSV/TSV/JSONL/JSON files (--text-col)")
      ->required();
  cmd->add_option("--vocab", f->vocab, "WordPiece vocabulary (vocab.txt), e.g. $(kiln data fetch bert-base-uncased-vocab)");
  cmd->add_option("--out", f->out, "Run directory: metrics.jsonl, checkpoints, and the model in OUT/model")->required();
  std::string presets;
  for (const auto& n : nn::kBertPresets) presets += (presets.empty() ? "" : " | ") + n;
  cmd->add_option("--preset", f->preset, "Model size: " + presets)->check(CLI::IsMember(nn::kBertPresets))->capture_default_str();
  cmd->add_option("--seq-len", f->seq_len, "Tokens per packed sequence, [CLS] and [SEP] included")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 16))
      ->capture_default_str();
  cmd->add_option("--epochs", f->options.epochs, "Passes over the packed sequences")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--steps", f->options.steps, "Optimizer steps in all (instead of --epochs)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", f->options.batch_size, "Sequences per step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--lr", f->options.optimizer.lr, "Peak learning rate (AdamW, linear warmup + cosine decay)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--warmup-ratio", f->options.schedule.warmup_ratio, "Warmup as a share of all steps")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--weight-decay", f->options.optimizer.weight_decay, "AdamW weight decay (not on biases and LayerNorm weights)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grad-clip", f->options.grad_clip, "Clip gradients to this global norm (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--mask-prob", f->options.masking.mask_prob, "Share of tokens predicted")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  cmd->add_flag("--whole-word-mask", f->whole_word, "Mask whole words (a token and its ## continuations) together");
  cmd->add_option("--hidden-dropout", f->hidden_dropout, "hidden_dropout_prob")->check(CLI::Range(0.0, 0.99))->capture_default_str();
  cmd->add_option("--attention-dropout", f->attention_dropout, "attention_probs_dropout_prob")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", f->options.checkpoint_every, "Steps between checkpoints (0 = only at the end)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--stop-after-steps", f->options.stop_after_steps, "Stop after this many steps of this run (resume later)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", f->options.seed, "Seed for init, order, masking and dropout")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column of CSV/TSV/JSONL/JSON inputs")->capture_default_str();
  cmd->add_option("--format", f->format, "Input format: auto (by extension; .txt = lines) | lines | csv | tsv | jsonl | json")
      ->check(CLI::IsMember({"auto", "lines", "csv", "tsv", "jsonl", "json"}))
      ->capture_default_str();
  cmd->add_flag("--cased", f->cased, "Keep case and accents (default: uncased, as bert-base-uncased)");
  cmd->add_flag("--resume", f->resume, "Continue from the run directory's last checkpoint");
  cmd->add_option("--device", f->device, "cpu | cuda[:N]")->capture_default_str();
  f->dist.add_to(*cmd);
  cmd->callback([f, cmd]() { run_pretrain(*f, *cmd); });
}

}  // namespace kiln::cli
