#!/usr/bin/env node
// The golden reference for `kiln tokenize --jsonl`: Hugging Face tokenizers (npm tokenizers@0.23.2,
// path in $HF_TOKENIZERS) set up as bert-base-uncased's tokenizer.json is (BertNormalizer,
// BertPreTokenizer, WordPiece with "##" and 100 characters per word, the [CLS] A [SEP] B [SEP]
// template, [PAD] [UNK] [CLS] [SEP] [MASK] as special added tokens).
//
//   node wordpiece_reference.js VOCAB INPUT.jsonl MAX_LENGTH PAD CASED > OUT.jsonl
// INPUT: one {"text": ..., "pair": ...} object a line ("pair" in every line or in none). MAX_LENGTH 0 = no
// truncation; PAD and CASED are 0 or 1. Output: one line per input line, as kiln tokenize --jsonl.
'use strict'
const fs = require('fs')
const path = require('path')
const hf = require(path.resolve(process.env.HF_TOKENIZERS))
const [vocabPath, inputPath, maxLength, pad, cased] = process.argv.slice(2)

const vocab = {}
fs.readFileSync(vocabPath, 'utf8').split('\n').forEach((t, i, all) => {
  if (i < all.length - 1 || t !== '') vocab[t.trimEnd()] = i
})
const tk = new hf.Tokenizer(hf.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }))
tk.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: cased !== '1' }))
tk.setPreTokenizer(hf.bertPreTokenizer())
tk.setPostProcessor(hf.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]))
tk.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
if (Number(maxLength) > 0) tk.setTruncation(Number(maxLength))
if (pad === '1') tk.setPadding({ maxLength: Number(maxLength), padId: vocab['[PAD]'], padToken: '[PAD]' })

const lines = fs.readFileSync(inputPath, 'utf8').split('\n').filter((l) => l !== '')
const inputs = lines.map((l) => JSON.parse(l))
const pairs = inputs.some((x) => x.pair !== undefined)
;(async () => {
  const out = []
  const chunk = 4096
  for (let i = 0; i < inputs.length; i += chunk) {
    const batch = inputs.slice(i, i + chunk)
    // encodeBatch takes single texts only in this binding; pairs go through encode().
    const encs = pairs
      ? await Promise.all(batch.map((x) => tk.encode(x.text, x.pair)))
      : await tk.encodeBatch(batch.map((x) => x.text))
    for (const e of encs) {
      out.push(JSON.stringify({ ids: e.getIds(), type_ids: e.getTypeIds(), attention_mask: e.getAttentionMask(),
        offsets: e.getOffsets(), tokens: e.getTokens() }))
    }
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''))
})()
