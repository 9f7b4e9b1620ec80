#!/usr/bin/python3
"""Writes tests/golden/tfidf/fasttext_tokens.json: the tokens of fastText's documented preprocessing
for classification (its tutorial's `sed -e "s/\\([.\\!?,'/()]\\)/ \\1 /g" | tr "[:upper:]" "[:lower:]"`,
then fastText's split at whitespace), here in Python: str.lower(), each of . ! ? , ' / ( ) spaced
apart, str.split(). Kiln's word analyzer with fasttext_tokens must give the same tokens and, with
ngram_range (1, 2), the same word bigrams (tokens joined by one space).

  /usr/bin/python3 tests/golden/make_fasttext_tokens_golden.py
"""
import json
import os
import re

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfidf", "fasttext_tokens.json")

DOCS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! It's a (test)/x... Q: why? A: because!",
    "a I x 1 2 3 -- ; : \" [b] {c} a-b a.b a,b don't rock'n'roll",
    "Café naïve résumé — Ångström, ŒUVRE and Straße; déjà vu!",
    "ΟΔΟΣ ΣΟΦΟΣ Σ ΑΣ. ΌΣΟΣ-ΣΟΦΟΣ İstanbul IŞIK",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds\x1cfile\x1dgroup\x1erecord\x1funit",
    "no\u00a0break\u2003em\u2028line\u3000ideographic\u0085next space",
    "emoji 😀👍🏽 party 🎉🎉 done.",
    "   leading and trailing   ",
    "",
    "...",
    "(((nested)))",
    "snake_case __init__ _ a_b",
    "مرحبا بالعالم، هذه جملة عربية.",
]

FT_PUNCT = re.compile(r"([.!?,'/()])")


def tokens(doc):
    return FT_PUNCT.sub(r" \1 ", doc.lower()).split()


def main():
    cases = []
    for doc in DOCS:
        t = tokens(doc)
        bigrams = [t[i] + " " + t[i + 1] for i in range(len(t) - 1)]
        cases.append({"doc": doc, "tokens": t, "terms_1_2": t + bigrams})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
