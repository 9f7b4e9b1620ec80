#!/usr/bin/python3
"""Kernel SHAP (bench/lib/kernel_shap.py's numpy algorithm, unchanged) over the words of a text for
a Kiln bert-family artifact, as `kiln explain --method kernel` computes it: a hidden word becomes
the [MASK] token. Model outputs come from Debian's python3-torch running the artifact's own weights
(model.safetensors) in the reference BERT of tests/golden/make_bert_golden.py (the model Kiln's
BERT parity test checks against), eval mode under torch.inference_mode, coalitions forwarded 512
at a time (Kiln's batch), padded to the batch's longest row with an attention mask. Token ids: a
plain BERT WordPiece (lowercase, strip accents, split on whitespace and punctuation, greedy
longest match with "##") over the artifact's vocabulary, computed once per text for each word and
each gap between words; a coalition's row is [CLS] + the gaps' tokens and each kept word's pieces
or [MASK] + [SEP], truncated as Kiln truncates (max_length).

    kernel_shap_bert.py ARTIFACT TEXTS.txt [NSAMPLES]  -> one JSON line per text: CPU seconds, M, phi
"""

import json
import os
import re
import sys
import time
import unicodedata

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "golden"))
from kernel_shap import kernel_shap, load_safetensors  # noqa: E402
from make_bert_golden import ReferenceBert  # noqa: E402

PRESETS = {"tiny": (2, 128, 2, 512), "mini": (4, 256, 4, 1024), "small": (4, 512, 8, 2048),
           "medium": (8, 512, 8, 2048), "base": (12, 768, 12, 3072)}
WORD = re.compile(r"\w+")


def load(artifact):
    manifest = json.load(open(os.path.join(artifact, "kiln.json")))
    model, pre = manifest["model"], manifest["preprocessors"][0]
    p = model["params"]
    if model["family"] != "bert" or pre["type"] != "wordpiece":
        sys.exit(f"{artifact}: expected a bert model over a wordpiece featurizer")
    if p["pre_ln"] or not p["layer_norm"] or p["residual_scale"] != 1.0 or p["hidden_act"] != "gelu":
        sys.exit(f"{artifact}: the reference BERT is post-LN with GELU (Hugging Face's); this model differs")
    w = load_safetensors(os.path.join(artifact, "model.safetensors"))
    layers, hidden, heads, inter = PRESETS[p.get("preset") or "base"]
    config = {"vocab_size": w["embeddings.word_embeddings.weight"].shape[0],
              "hidden_size": p["hidden_size"] or hidden, "num_hidden_layers": p["num_hidden_layers"] or layers,
              "num_attention_heads": p["num_attention_heads"] or heads,
              "intermediate_size": p["intermediate_size"] or inter,
              "max_position_embeddings": p["max_position_embeddings"], "type_vocab_size": p["type_vocab_size"],
              "layer_norm_eps": p["layer_norm_eps"], "pad_token_id": p["pad_token_id"]}
    net = ReferenceBert(config, w["classifier.weight"].shape[0]).eval()
    with torch.no_grad():
        for name, t in net.named_tensors().items():
            key = name[len("bert."):] if name.startswith("bert.") else name
            if key in w:
                t.copy_(torch.from_numpy(w[key].copy()))
            elif not name.startswith("cls."):
                sys.exit(f"{artifact}: model.safetensors lacks {key}")
    vocab = open(os.path.join(artifact, pre["files"]["vocab.txt"]), encoding="utf-8").read().splitlines()
    return net, p["pooling"], {t: i for i, t in enumerate(vocab)}, pre["options"]


def wordpiece(text, ids, o):
    """BERT's basic tokenizer + WordPiece, for one piece of text."""
    if o["lowercase"]:
        text = text.lower()
    if o["strip_accents"]:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    out = []
    for word in re.findall(r"\w+|[^\w\s]", text):
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in ids:
                end -= 1
            if end == start:
                pieces = [ids["[UNK]"]]
                break
            pieces.append(ids[("##" if start else "") + word[start:end]])
            start = end
        out += pieces
    return out


def main():
    artifact, texts_path = sys.argv[1], sys.argv[2]
    nsamples = int(sys.argv[3]) if len(sys.argv) > 3 else None
    net, pooling, ids, o = load(artifact)
    head = "logits_cls" if pooling == "cls" else "logits_mean"
    cls, sep, mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
    for text in open(texts_path, encoding="utf-8").read().splitlines():
        t0 = time.process_time()
        words = [(mt.start(), mt.end()) for mt in WORD.finditer(text)]
        gaps = [text[a:b] for a, b in zip([0] + [e for _, e in words], [s for s, _ in words] + [len(text)])]
        gap_ids = [wordpiece(g, ids, o) for g in gaps]
        word_ids = [wordpiece(text[s:e], ids, o) for s, e in words]

        def f(masks):
            out = []
            for start in range(0, len(masks), 512):
                rows = []
                for mask in masks[start:start + 512]:
                    row = list(gap_ids[0])
                    for k, keep in enumerate(mask):
                        row += word_ids[k] if keep else [mask_id]
                        row += gap_ids[k + 1]
                    rows.append([cls] + row[:o["max_length"] - 2] + [sep])
                n = max(len(r) for r in rows)
                x = torch.tensor([r + [0] * (n - len(r)) for r in rows])
                am = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
                with torch.inference_mode():
                    out.append(net(x, am, torch.zeros_like(x))[head].double().numpy())
            return np.concatenate(out)

        phi = kernel_shap(len(words), f, nsamples)
        print(json.dumps({"seconds": time.process_time() - t0, "m": len(words), "phi": phi.tolist()}), flush=True)


if __name__ == "__main__":
    main()
