#!/usr/bin/python3
"""Writes tests/golden/tfidf/*.json: what scikit-learn 1.2 (Debian python3-sklearn) produces for
kiln's TF-IDF, hashing and analyzer tests.

  /usr/bin/python3 tests/golden/make_tfidf_golden.py

Each case file holds the corpus, the options (scikit-learn parameter names; "mode" says which
estimator: tfidf = TfidfVectorizer, hashing = HashingVectorizer, hashing_tfidf = HashingVectorizer
(norm=None) followed by TfidfTransformer), the vocabulary in column order, idf, and the CSR matrix.
analyzers.json holds build_analyzer() output per document (analyzers_mixed.json the same, and
str.lower(), for generated documents mixing ASCII with what defeats the ASCII fast paths), lower.json Python's str.lower(), and
murmur.json sklearn.utils.murmurhash3_32 values.
"""
import json
import os
import random
import sys

import numpy as np
import sklearn
from sklearn.feature_extraction.text import (HashingVectorizer, TfidfTransformer,
                                             TfidfVectorizer)
from sklearn.utils import murmurhash3_32

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tfidf")

MULTILINGUAL = [
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé — Ångström, ŒUVRE and Straße; déjà vu!",
    "我爱北京天安门，天安门上太阳升。",
    "東京タワーに行きました。カタカナとひらがな",
    "안녕하세요 세계, 한국어 텍스트",
    "مرحبا بالعالم، هذه جملة عربية",
    "नमस्ते दुनिया, यह हिंदी पाठ है",
    "ΟΔΟΣ ΣΟΦΟΣ Σ ΑΣ. ΌΣΟΣ-ΣΟΦΟΣ",
    "İstanbul IŞIK ıssız İİ KAYIŞ",
    "emoji 😀👍🏽 party 🎉🎉 done",
    "digits 2023 3.14 ½ ² ٣ ۴ Ⅻ x2 42",
    "snake_case __init__ _ a_b __ under_score_",
    "punctuation!!! ?? ... (parens) [brackets] {braces} a-b a.b a,b",
    "tabs\tand  double  spaces\n\nnew lines\r\nwindows",
    "combining e\u0301 vs \u00e9 and n\u0303",
    "",
    "!!! ? .",
    "The the THE tHe fox FOX dog",
    "a b c d e f x y z",
    "Straße STRASSE strasse ǅemal ǈ",
]

ENGLISH = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "the cat chased the dog",
    "the bird flew over the house",
    "the fish swam in the pond",
    "the dog barked at the cat",
    "a cat and the dog are friends",
    "the mat is on the floor",
    "the log is in the pond",
    "the bird sat on the house",
    "the cat and the bird",
    "the end",
]


def tie_corpus():
    rng = random.Random(7)
    words = [f"w{i:02d}" for i in range(70)]
    docs = []
    for _ in range(30):
        k = rng.randint(3, 9)
        docs.append(" ".join(rng.choice(words) for _ in range(k)))
    # Many terms with equal totals: each appears exactly once or twice.
    docs.append(" ".join(f"tie{i:02d}" for i in range(40)))
    docs.append(" ".join(f"tie{i:02d}" for i in range(0, 40, 2)))
    return docs


# Fragments for mixed_docs(): ASCII of every length around the 8-byte blocks of the ASCII fast
# paths, next to what forces the general path: non-ASCII letters, combining marks, uppercase whose
# lowercase changes byte length (U+0130, U+1E9E, U+023A, KELVIN SIGN), final sigma, non-ASCII
# digits and whitespace, CJK, emoji and punctuation.
MIXED_FRAGMENTS = [
    "a", "Ab", "THE", "word", "Hello", "QUICKLY", "sentence", "Underscore_", "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "x1", "2023", "3.14", "_", "__init__", "snake_case", "İ", "İstanbul", "ẞ", "STRAẞE", "Ⱥ", "\u212a", "Σ", "ΟΔΟΣ",
    "café", "e\u0301", "\u0308", "n\u0303o", "naïve", "٣", "½", "Ⅻ", "北京", "東京タワー", "한국어", "😀", "🎉x",
    ".", ",", "!", "-", "'", "(", ")", "—", "\u00a0", "\u3000", "\u0085", "\u2028", "\x1c", "\t", "\n", "\r\n", "  ",
]
MIXED_SEPARATORS = ["", " ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", ", ", ".", "-"]


def mixed_docs():
    rng = random.Random(11)
    docs = []
    for _ in range(100):
        k = rng.randint(1, 30)
        doc = ""
        for _ in range(k):
            doc += rng.choice(MIXED_FRAGMENTS) + rng.choice(MIXED_SEPARATORS)
        docs.append(doc)
    # Long ASCII runs with one non-ASCII byte at each position of an 8-byte block.
    for pos in range(9):
        docs.append("Lorem ipsum DOLOR sit amet"[:pos] + "é" + " consectetur ADIPISCING elit İ x")
    return docs


CORPORA = {"multilingual": MULTILINGUAL, "english": ENGLISH, "ties": tie_corpus()}

CASES = [
    ("default", "multilingual", {}),
    ("default_english", "english", {}),
    ("ngram_1_2", "multilingual", {"ngram_range": [1, 2]}),
    ("ngram_2_3", "english", {"ngram_range": [2, 3]}),
    ("char_wb_2_4", "multilingual", {"analyzer": "char_wb", "ngram_range": [2, 4]}),
    ("char_wb_3_5", "english", {"analyzer": "char_wb", "ngram_range": [3, 5]}),
    ("char_1_3", "multilingual", {"analyzer": "char", "ngram_range": [1, 3]}),
    ("char_2_2_nolower", "multilingual", {"analyzer": "char", "ngram_range": [2, 2], "lowercase": False}),
    ("min_df_2", "multilingual", {"min_df": 2}),
    ("min_df_0_2", "english", {"min_df": 0.2}),
    ("max_df_0_9", "english", {"max_df": 0.9}),
    ("max_df_3", "english", {"max_df": 3}),
    ("max_features_ties", "ties", {"max_features": 25}),
    ("max_features_ties_binary", "ties", {"max_features": 33, "binary": True}),
    ("max_features_english", "english", {"max_features": 5}),
    ("max_features_char", "multilingual", {"analyzer": "char_wb", "ngram_range": [1, 3], "max_features": 40}),
    ("sublinear_tf", "multilingual", {"sublinear_tf": True}),
    ("norm_l1", "multilingual", {"norm": "l1"}),
    ("norm_none", "english", {"norm": None}),
    ("no_idf", "multilingual", {"use_idf": False}),
    ("no_smooth_idf", "english", {"smooth_idf": False}),
    ("binary", "multilingual", {"binary": True}),
    ("nolower", "multilingual", {"lowercase": False}),
    ("float64", "multilingual", {"dtype": "float64", "ngram_range": [1, 2]}),
    ("float64_sublinear_l1", "english", {"dtype": "float64", "sublinear_tf": True, "norm": "l1"}),
    ("hashing", "multilingual", {"mode": "hashing", "n_features": 1024}),
    ("hashing_small", "english", {"mode": "hashing", "n_features": 16, "norm": "l1"}),
    ("hashing_no_sign", "multilingual", {"mode": "hashing", "n_features": 64, "alternate_sign": False,
                                         "ngram_range": [1, 2]}),
    ("hashing_binary_f64", "english", {"mode": "hashing", "n_features": 32, "binary": True, "dtype": "float64"}),
    ("hashing_tfidf", "multilingual", {"mode": "hashing_tfidf", "n_features": 256}),
    ("hashing_tfidf_small", "english", {"mode": "hashing_tfidf", "n_features": 8, "alternate_sign": False,
                                        "sublinear_tf": True}),
]

VECTORIZER_KEYS = ["lowercase", "analyzer", "ngram_range", "min_df", "max_df", "max_features", "binary",
                   "norm", "use_idf", "smooth_idf", "sublinear_tf"]


def full_options(params):
    o = {"mode": "tfidf", "lowercase": True, "analyzer": "word", "ngram_range": [1, 1], "min_df": 1,
         "max_df": 1.0, "max_features": None, "binary": False, "norm": "l2", "use_idf": True,
         "smooth_idf": True, "sublinear_tf": False, "dtype": "float32", "n_features": 1048576,
         "alternate_sign": True}
    o.update(params)
    if o["mode"] == "hashing":
        o["use_idf"] = False
    return o


def run_case(o, docs):
    dtype = np.float32 if o["dtype"] == "float32" else np.float64
    if o["mode"] == "tfidf":
        v = TfidfVectorizer(lowercase=o["lowercase"], analyzer=o["analyzer"], ngram_range=tuple(o["ngram_range"]),
                            min_df=o["min_df"], max_df=o["max_df"], max_features=o["max_features"],
                            binary=o["binary"], norm=o["norm"], use_idf=o["use_idf"], smooth_idf=o["smooth_idf"],
                            sublinear_tf=o["sublinear_tf"], dtype=dtype)
        X = v.fit_transform(docs)
        vocab = v.get_feature_names_out().tolist()
        idf = v.idf_.tolist() if o["use_idf"] else []
        return X, vocab, idf
    common = dict(lowercase=o["lowercase"], analyzer=o["analyzer"], ngram_range=tuple(o["ngram_range"]),
                  n_features=o["n_features"], alternate_sign=o["alternate_sign"], binary=o["binary"], dtype=dtype)
    if o["mode"] == "hashing":
        X = HashingVectorizer(norm=o["norm"], **common).transform(docs)
        return X, [], []
    counts = HashingVectorizer(norm=None, **common).transform(docs)
    t = TfidfTransformer(norm=o["norm"], use_idf=o["use_idf"], smooth_idf=o["smooth_idf"],
                         sublinear_tf=o["sublinear_tf"])
    X = t.fit_transform(counts)
    idf = t.idf_.tolist() if o["use_idf"] else []
    return X, [], idf


def write(name, payload):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")


def main():
    assert sklearn.__version__.startswith("1.2"), f"need scikit-learn 1.2, found {sklearn.__version__}"
    os.makedirs(OUT, exist_ok=True)
    write("corpora.json", CORPORA)
    for name, corpus, params in CASES:
        o = full_options(params)
        X, vocab, idf = run_case(o, CORPORA[corpus])
        X = X.tocsr()
        X.sort_indices()
        write(f"case_{name}.json", {
            "sklearn": sklearn.__version__, "corpus": corpus, "options": o,
            "shape": list(X.shape), "vocabulary": vocab, "idf": [float(x) for x in idf],
            "indptr": X.indptr.tolist(), "indices": X.indices.tolist(),
            "data": [float(x) for x in X.data],
        })
    analyzers = []
    for kind, ngram in [("word", [1, 1]), ("word", [1, 3]), ("word", [2, 2]), ("char", [1, 3]), ("char", [2, 4]),
                        ("char_wb", [1, 1]), ("char_wb", [2, 4]), ("char_wb", [3, 6])]:
        a = TfidfVectorizer(analyzer=kind, ngram_range=tuple(ngram)).build_analyzer()
        analyzers.append({"analyzer": kind, "ngram_range": ngram,
                          "terms": [a(d) for d in MULTILINGUAL + ENGLISH[:3]]})
    write("analyzers.json", {"docs": MULTILINGUAL + ENGLISH[:3], "cases": analyzers})
    mixed = mixed_docs()
    mixed_cases = []
    for kind, ngram, lowercase in [("word", [1, 1], True), ("word", [1, 2], True), ("word", [1, 1], False),
                                   ("char", [1, 3], True), ("char", [2, 2], False), ("char_wb", [1, 1], True),
                                   ("char_wb", [2, 5], True), ("char_wb", [3, 3], False)]:
        a = TfidfVectorizer(analyzer=kind, ngram_range=tuple(ngram), lowercase=lowercase).build_analyzer()
        mixed_cases.append({"analyzer": kind, "ngram_range": ngram, "lowercase": lowercase,
                            "terms": [a(d) for d in mixed]})
    write("analyzers_mixed.json", {"docs": mixed, "lower": [d.lower() for d in mixed], "cases": mixed_cases})
    samples = MULTILINGUAL + ["Σ", "ΑΣ", "Σ.", "ΑΣΑ", "Α'Σ'", "ᾼΣ", "ΑΣ\u0345", "ǅǄǆ", "ẞ", "ΐ", "Ⅻ ⅻ", "ⓐⒶ",
                              "𐐀𐐨", "K Å Ω", "ΣΣΣ ΣΣ", "A\u0301Σ\u0301"]
    write("lower.json", [[s, s.lower()] for s in samples])
    keys = ["", "a", "ab", "abc", "abcd", "hello", "the quick brown fox", "天安门", "café", "😀", "w00 w01"]
    write("murmur.json", [[k, int(murmurhash3_32(k, seed=0))] for k in keys])
    print(f"wrote {len(CASES)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
