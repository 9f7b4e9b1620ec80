#!/usr/bin/env node
// The golden reference for `kiln tokenize --jsonl`: Hugging Face tokenizers (npm tokenizers@0.23.2,
// path in $HF_TOKENIZERS) set up as bert-base-uncased's tokenizer.json is (BertNormalizer,
// BertPreTokenizer, WordPiece with "##" and 100 characters per word, the [CLS] A [SEP] B [SEP]
// template, [PAD] [UNK] [CLS] [SEP] [MASK] as special added tokens).
//
//   node wordpiece_reference.js VOCAB INPUT.jsonl MAX_LENGTH PAD CASED [STRIDE] > OUT.jsonl
// INPUT: one {"text": ..., "pair": ...} object a line ("pair" in every line or in none). MAX_LENGTH 0 = no
// truncation; PAD and CASED are 0 or 1. Output: one line per input line, as kiln tokenize --jsonl.
// STRIDE (single texts, with MAX_LENGTH): overlapping windows, as kiln tokenize --long-text window
// --stride STRIDE: the first window plus "overflowing". This binding does not return Hugging Face's
// overflowing encodings (tokenizers@0.23.2's Node encode() drops them: none without a post-processor,
// and BertProcessing's own re-truncation leaves one window that ends at MAX_LENGTH), so the windows
// are cut here from HF's untruncated encoding the way the Rust core's Encoding::truncate cuts
// overflowing tokens: windows of MAX_LENGTH - 2 tokens starting at 0, w - STRIDE, 2 (w - STRIDE), ...
// until one reaches the last token, each as [CLS] window [SEP]. Ids, offsets and tokens are HF's.
'use strict'
const fs = require('fs')
const path = require('path')
const hf = require(path.resolve(process.env.HF_TOKENIZERS))
const [vocabPath, inputPath, maxLength, pad, cased, strideArg] = process.argv.slice(2)
const stride = strideArg === undefined ? -1 : Number(strideArg)

const vocab = {}
fs.readFileSync(vocabPath, 'utf8').split('\n').forEach((t, i, all) => {
  if (i < all.length - 1 || t !== '') vocab[t.trimEnd()] = i
})
const tk = new hf.Tokenizer(hf.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }))
tk.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: cased !== '1' }))
tk.setPreTokenizer(hf.bertPreTokenizer())
tk.setPostProcessor(hf.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]))
tk.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'])
if (Number(maxLength) > 0 && stride < 0) tk.setTruncation(Number(maxLength))
if (pad === '1' && stride < 0) tk.setPadding({ maxLength: Number(maxLength), padId: vocab['[PAD]'], padToken: '[PAD]' })

const fields = (ids, typeIds, mask, offsets, tokens) =>
  JSON.stringify({ ids, type_ids: typeIds, attention_mask: mask, offsets, tokens })
// The windows of an untruncated single-text encoding (see the top): [first window fields, overflowing].
function windows (e) {
  const width = Number(maxLength) - 2
  const ids = e.getIds(); const offsets = e.getOffsets(); const tokens = e.getTokens()
  const n = ids.length - 2
  const out = []
  for (let start = 0; ; start += width - stride) {
    const stop = Math.min(start + width, n)
    const w = { ids: [ids[0]], offsets: [offsets[0]], tokens: [tokens[0]] }
    for (let k = start; k < stop; ++k) { w.ids.push(ids[k + 1]); w.offsets.push(offsets[k + 1]); w.tokens.push(tokens[k + 1]) }
    w.ids.push(ids[n + 1]); w.offsets.push(offsets[n + 1]); w.tokens.push(tokens[n + 1])
    const mask = w.ids.map(() => 1)
    while (pad === '1' && w.ids.length < Number(maxLength)) {
      w.ids.push(vocab['[PAD]']); w.offsets.push([0, 0]); w.tokens.push('[PAD]'); mask.push(0)
    }
    out.push(fields(w.ids, w.ids.map(() => 0), mask, w.offsets, w.tokens))
    if (stop === n) break
  }
  return out[0].slice(0, -1) + ',"overflowing":[' + out.slice(1).join(',') + ']}'
}

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
      out.push(stride >= 0 ? windows(e)
        : fields(e.getIds(), e.getTypeIds(), e.getAttentionMask(), e.getOffsets(), e.getTokens()))
    }
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''))
})()
