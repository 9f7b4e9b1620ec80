#!/usr/bin/env node
// The golden reference for `kiln vocab`: Hugging Face tokenizers' WordPiece trainer (npm
// tokenizers@0.23.2, path in $HF_TOKENIZERS) as its Node binding exposes it. The binding has one
// way to train, Tokenizer.train(files), with the model's default trainer: WordPiece.getTrainer() =
// WordPieceTrainer::builder().build(), i.e. vocab_size 30000, min_frequency 0, no special tokens,
// no limit_alphabet, continuing_subword_prefix "##". Files are read a line at a time, each line
// normalized (BertNormalizer) and pre-tokenized (BertPreTokenizer) into the words counted.
//
//   node hf_wordpiece_train.js OUT_VOCAB CASED FILE... > /dev/null
// CASED 0: bertNormalizer() defaults (lowercase, strip accents); 1: lowercase false (accents kept,
// as strip_accents follows lowercase). OUT_VOCAB: the vocabulary by id, one token a line (the
// vocab.txt WordPiece.save writes). Prints the training time (wall and CPU) to stderr.
'use strict'
const fs = require('fs')
const path = require('path')
const hf = require(path.resolve(process.env.HF_TOKENIZERS))
const [out, cased, ...files] = process.argv.slice(2)

const tk = new hf.Tokenizer(hf.WordPiece.empty())
tk.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: cased !== '1' }))
tk.setPreTokenizer(hf.bertPreTokenizer())
const start = process.hrtime.bigint()
const cpuStart = process.cpuUsage()
tk.train(files)
const seconds = Number(process.hrtime.bigint() - start) / 1e9
const cpu = process.cpuUsage(cpuStart)
const cpuSeconds = (cpu.user + cpu.system) / 1e6
const vocab = Object.entries(tk.getVocab(true)).sort((a, b) => a[1] - b[1])
vocab.forEach(([, id], i) => { if (id !== i) throw new Error(`ids are not 0..n-1: ${id} at ${i}`) })
fs.writeFileSync(out, vocab.map(([t]) => t).join('\n') + '\n')
process.stderr.write(`hf wordpiece train: ${vocab.length} tokens in ${seconds.toFixed(3)} s (cpu ${cpuSeconds.toFixed(3)} s)\n`)
