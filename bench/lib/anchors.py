"""Reference systems for the training benchmarks: scikit-learn and fastText's file format.

Each subcommand is one timed step of a benchmark, run as its own process so that the shell's wall
clock covers everything a user would pay (interpreter start-up, imports, CSV parsing, model save).

  sklearn-train  MODEL.pkl CSV [CSV ...]   TfidfVectorizer(max_features) + LogisticRegression; pickle
                 (env MAX_FEATURES, 0 = all; SK_NGRAM_MAX; SK_CLASS_WEIGHT=balanced; SK_MAX_ITER)
  sklearn-predict MODEL.pkl TEST.csv OUT   one predicted label per line
  fasttext-format OUT.txt CSV [CSV ...]    "__label__L text" lines (text lowercased, newlines -> spaces;
                                           FT_PUNCT=1 splits punctuation from words as fastText advises)
  fasttext-text   OUT.txt CSV              text only, same normalisation (input of `fasttext predict`)

CSV files are `text,label` with a header, as written by `kiln prepare`. Uses only /usr/bin/python3
with Debian's python3-sklearn (1.2) and python3-pandas.
"""
import csv
import os
import pickle
import sys


def read_csv(paths):
    """Returns (texts, labels) from one or more text,label CSV files (any column order)."""
    csv.field_size_limit(sys.maxsize)
    texts, labels = [], []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                texts.append(row["text"])
                labels.append(row.get("label", ""))
    return texts, labels


_FT_PUNCT = None


def fasttext_clean(text):
    # fastText splits on whitespace and treats '\n' as end of example: keep one example per line.
    # FT_PUNCT=1: also fastText's documented preprocessing for classification (its tutorial's
    # sed "s/\([.\!?,'/()]\)/ \1 /g" | tr "[:upper:]" "[:lower:]"), punctuation split from words.
    global _FT_PUNCT
    if _FT_PUNCT is None:
        import re
        _FT_PUNCT = re.compile(r"([.!?,'/()])") if os.environ.get("FT_PUNCT") == "1" else False
    text = text.lower()
    if _FT_PUNCT:
        text = _FT_PUNCT.sub(r" \1 ", text)
    return " ".join(text.split())


def sklearn_train(model_path, paths, max_features, max_iter, n_jobs, class_weight=None, ngram_max=1):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = read_csv(paths)
    model = make_pipeline(
        TfidfVectorizer(max_features=max_features or None, ngram_range=(1, ngram_max)),
        LogisticRegression(max_iter=max_iter, n_jobs=n_jobs, class_weight=class_weight),
    )
    model.fit(texts, labels)
    tmp = model_path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, model_path)


def sklearn_predict(model_path, test_path, out_path):
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    texts, _ = read_csv([test_path])
    pred = model.predict(texts)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("".join(str(p) + "\n" for p in pred))


def fasttext_format(out_path, paths, with_labels):
    texts, labels = read_csv(paths)
    with open(out_path, "w", encoding="utf-8") as f:
        for text, label in zip(texts, labels):
            if with_labels:
                # fastText labels end at whitespace: U+2581 stands in for a space (metrics.py maps it back).
                if "\u2581" in label or any(c.isspace() and c != " " for c in label):
                    sys.exit(f"anchors.py: label {label!r} holds whitespace other than spaces, or U+2581")
                f.write(f"__label__{label.replace(' ', chr(0x2581))} {fasttext_clean(text)}\n")
            else:
                f.write(fasttext_clean(text) + "\n")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "sklearn-train" and len(args) >= 2:
        sklearn_train(args[0], args[1:],
                      max_features=int(os.environ.get("MAX_FEATURES", "5000")),
                      max_iter=int(os.environ.get("SK_MAX_ITER", "1000")),
                      n_jobs=int(os.environ.get("THREADS", "2")),
                      class_weight=os.environ.get("SK_CLASS_WEIGHT") or None,
                      ngram_max=int(os.environ.get("SK_NGRAM_MAX", "1")))
    elif cmd == "sklearn-predict" and len(args) == 3:
        sklearn_predict(*args)
    elif cmd == "fasttext-format" and len(args) >= 2:
        fasttext_format(args[0], args[1:], with_labels=True)
    elif cmd == "fasttext-text" and len(args) == 2:
        fasttext_format(args[0], args[1:], with_labels=False)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    # Cap BLAS/OpenMP threads at the benchmark's budget (set before numpy loads).
    threads = os.environ.get("THREADS", "2")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    main(sys.argv)
