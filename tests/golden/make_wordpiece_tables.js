#!/usr/bin/env node
// Writes src/text/wordpiece_tables.inc: the character classes and mappings of Hugging Face
// tokenizers' BertNormalizer and BertPreTokenizer, probed code point by code point through the
// reference itself (npm tokenizers@0.23.2, the Rust library's Node binding). HF's tables come from
// its own crates (unicode_categories, unicode-normalization-alignments, Rust's std) and need not
// match utf8proc's or Python's Unicode version, so they are measured, not derived.
//
//   HF_TOKENIZERS=$(bash tests/golden/hf_tokenizers.sh) \
//     node tests/golden/make_wordpiece_tables.js > src/text/wordpiece_tables.inc
//
// Every code point except the surrogates is probed, one normalizer/pre-tokenizer call each:
//   clean_text (BertNormalizer with only clean_text): removed, mapped to ' ', or kept
//   handle_chinese_chars: padded with spaces (checked against the fixed CJK ranges in wordpiece.cpp)
//   strip_accents (NFD, then drop nonspacing marks): the code points it becomes
//   lowercase: the code points it becomes
//   BertPreTokenizer on "a<c>a": whitespace (removed), punctuation (isolated), or part of a word
// The composed uncased mapping (clean -> chinese -> strip -> lowercase) is checked against the full
// uncased normalizer for every code point, and Hangul syllables against the algorithmic NFD that
// wordpiece.cpp computes instead of listing them.
'use strict'
const path = require('path')
const hf = require(path.resolve(process.env.HF_TOKENIZERS || 'node_modules/tokenizers'))

const opts = (clean, chinese, strip, lower) =>
  hf.bertNormalizer({ cleanText: clean, handleChineseChars: chinese, stripAccents: strip, lowercase: lower })
const clean = opts(true, false, false, false)
const chinese = opts(false, true, false, false)
const strip = opts(false, false, true, false)
const lower = opts(false, false, false, true)
const uncased = opts(true, true, true, true)
const pre = hf.bertPreTokenizer()

const kRemoved = 1, kCleanSpace = 2, kSplitSpace = 4, kPunct = 8, kChinese = 16
const CJK = [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f], [0x2b740, 0x2b81f],
  [0x2b920, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f]]
const isCjk = (cp) => CJK.some(([a, b]) => cp >= a && cp <= b)

function hangulNfd(cp) {
  const s = cp - 0xac00
  const l = 0x1100 + Math.floor(s / 588), v = 0x1161 + Math.floor((s % 588) / 28), t = s % 28
  return String.fromCodePoint(l, v) + (t ? String.fromCodePoint(0x11a7 + t) : '')
}

const flags = new Uint8Array(0x110000)
const stripMap = [], lowerMap = []
let failures = 0
function fail(msg) {
  if (failures++ < 20) process.stderr.write(msg + '\n')
}

for (let cp = 0; cp < 0x110000; ++cp) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue
  const c = String.fromCodePoint(cp)
  let f = 0
  const cl = clean.normalizeString(c)
  if (cl === '') f |= kRemoved
  else if (cl === ' ' && c !== ' ') f |= kCleanSpace
  else if (cl !== c) fail(`clean_text maps U+${cp.toString(16)} to ${JSON.stringify(cl)}`)
  const ch = chinese.normalizeString(c)
  if (ch === ' ' + c + ' ') f |= kChinese
  else if (ch !== c) fail(`handle_chinese_chars maps U+${cp.toString(16)} to ${JSON.stringify(ch)}`)
  if (((f & kChinese) !== 0) !== isCjk(cp)) fail(`U+${cp.toString(16)}: CJK ranges disagree with the reference`)
  const st = strip.normalizeString(c)
  if (st !== c) {
    if (cp >= 0xac00 && cp <= 0xd7a3) {
      if (st !== hangulNfd(cp)) fail(`Hangul U+${cp.toString(16)} strips to ${JSON.stringify(st)}`)
    } else stripMap.push([cp, st])
  }
  const lo = lower.normalizeString(c)
  if (lo !== c) lowerMap.push([cp, lo])
  const p = pre.preTokenizeString('a' + c + 'a').map((x) => x[0])
  if (p.length === 2 && p[0] === 'a' && p[1] === 'a') f |= kSplitSpace
  else if (p.length === 3 && p[1] === c) f |= kPunct
  else if (!(p.length === 1 && p[0] === 'a' + c + 'a')) fail(`pre-tokenizer splits a<U+${cp.toString(16)}>a as ${JSON.stringify(p)}`)
  flags[cp] = f
}

// Composition check: Kiln applies the steps one code point at a time.
const stripOf = new Map(stripMap), lowerOf = new Map(lowerMap)
for (let cp = 0; cp < 0x110000; ++cp) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue
  const c = String.fromCodePoint(cp)
  let s
  if (flags[cp] & kRemoved) s = ''
  else if (flags[cp] & kCleanSpace) s = ' '
  else {
    const st = cp >= 0xac00 && cp <= 0xd7a3 ? hangulNfd(cp) : stripOf.has(cp) ? stripOf.get(cp) : c
    s = ''
    for (const d of st) s += lowerOf.has(d.codePointAt(0)) ? lowerOf.get(d.codePointAt(0)) : d
    if (flags[cp] & kChinese) s = ' ' + s + ' '
  }
  const want = uncased.normalizeString(c)
  if (s !== want) fail(`uncased U+${cp.toString(16)}: composed ${JSON.stringify(s)}, reference ${JSON.stringify(want)}`)
}
if (failures) {
  process.stderr.write(`${failures} probes disagree with the model above; tables not written\n`)
  process.exit(1)
}

const hex = (n) => '0x' + n.toString(16).toUpperCase()
function utf8Literal(s) {
  let out = '"'
  for (const b of Buffer.from(s, 'utf8')) out += '\\x' + b.toString(16).toUpperCase().padStart(2, '0')
  return out + '"'
}
function emit(name, type, items) {
  const lines = []
  let line = '   '
  for (const it of items) {
    if (line.length + it.length + 2 > 100) {
      lines.push(line)
      line = '   '
    }
    line += ' ' + it + ','
  }
  if (line.trim()) lines.push(line)
  return `// ${items.length} entries\nconstexpr ${type} ${name}[] = {\n${lines.join('\n')}\n};\n`
}

const runs = []
for (let cp = 0; cp < 0x110000;) {
  const f = flags[cp]
  let end = cp
  while (end + 1 < 0x110000 && flags[end + 1] === f && !(end + 1 >= 0xd800 && end + 1 <= 0xdfff)) ++end
  if (f !== 0) runs.push(`{${hex(cp)}, ${hex(end)}, ${f}}`)
  cp = end + 1
}
process.stdout.write(
  `// Generated by tests/golden/make_wordpiece_tables.js from npm tokenizers@0.23.2. Do not edit.\n` +
    `// Included by src/text/wordpiece_chars.cpp only.\n` +
    `// Flags: 1 removed by clean_text, 2 clean_text makes it ' ', 4 pre-tokenizer whitespace,\n` +
    `// 8 pre-tokenizer punctuation, 16 CJK ideograph (handle_chinese_chars).\n` +
    emit('kFlagRuns', 'FlagRun', runs) +
    `// strip_accents (NFD without nonspacing marks) where it changes the code point; Hangul\n// syllables are decomposed in code.\n` +
    emit('kStripMap', 'CodeMap', stripMap.map(([cp, s]) => `{${hex(cp)}, ${utf8Literal(s)}}`)) +
    `// lowercase where it changes the code point (Rust's char::to_lowercase, one code point at a time).\n` +
    emit('kLowerMap', 'CodeMap', lowerMap.map(([cp, s]) => `{${hex(cp)}, ${utf8Literal(s)}}`)),
)
