#!/usr/bin/python3
"""Golden integrated gradients over BERT's word embeddings for tests/explain/ (Kiln's
Explainer::ig_tokens_one), with Debian's python3-torch.

The model is the golden BERT checkpoint of make_bert_golden.py (tests/golden/nn/bert: vocab 100,
hidden 32, 2 layers, 3 classes, cls pooling), read back from its model.safetensors and run by that
script's ReferenceBert with the word-embedding lookup replaced by given embeddings. A WordPiece
vocabulary of 100 tokens ([PAD] [UNK] [CLS] [SEP] [MASK], then w5x ... w99x, one whole word each)
makes the texts' token ids known. For each text and baseline (pad: every token but [CLS]/[SEP]
gets the [PAD] row; zero: a zero row), IG as Captum's LayerIntegratedGradients with the riemann_middle
method computes it: 50 midpoints α = (k + 0.5) / 50 of the straight path, gradient of each class
logit w.r.t. the embeddings, attribution of a token = Σ_h (e − e')·mean gradient.

    /usr/bin/python3 tests/golden/make_bert_ig_golden.py

Writes tests/golden/explain/bert_ig_vocab.txt and tests/golden/explain/bert_ig_golden.json:
{"steps", "cases": [{"text", "baseline", "input_ids", "logits", "base_logits",
"attributions": [[per class] per non-special token], "delta": [per class]}]}.
"""

import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_bert_golden as mbg  # noqa: E402

STEPS = 50
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%dx" % i for i in range(5, 100)]
TEXTS = ["w12x w7x w40x w40x w99x", "W5x  w63x w18x"]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        s, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[s:e], dtype="<f4").reshape(info["shape"]).copy())
    return out


def load_model():
    model = mbg.ReferenceBert(mbg.CONFIG, mbg.NUM_CLASSES).eval()
    weights = read_safetensors(os.path.join(HERE, "nn", "bert", "model.safetensors"))
    with torch.no_grad():
        for name, t in model.named_tensors().items():
            t.copy_(weights[name])
    return model


def logits_from_embeds(model, embeds, mask, types):
    """ReferenceBert.forward with the word embeddings given (cls pooling, the classifier head)."""
    n = embeds.shape[1]
    x = embeds + model.token_type(types) + model.position(torch.arange(n).unsqueeze(0))
    x = model.emb_norm(x)
    additive = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    for layer in model.layers:
        x = layer(x, additive)
    return model.classifier(torch.tanh(model.pooler(x[:, 0])))


def ids_of(text):
    words = text.lower().split()
    return [2] + [VOCAB.index(w) for w in words] + [3]


def integrated_gradients(model, ids, baseline):
    ids_t = torch.tensor([ids])
    n = len(ids)
    mask = torch.ones(1, n, dtype=torch.int64)
    types = torch.zeros(1, n, dtype=torch.int64)
    with torch.no_grad():
        x = model.word(ids_t)
        special = torch.tensor([[i in (2, 3)] for i in ids]).unsqueeze(0)
        start = model.word.weight[0].expand_as(x) if baseline == "pad" else torch.zeros_like(x)
        base = torch.where(special, x, start)
        fx = logits_from_embeds(model, x, mask, types)[0]
        fb = logits_from_embeds(model, base, mask, types)[0]
    alphas = (torch.arange(STEPS, dtype=torch.float32) + 0.5) / STEPS
    path = (base + alphas.view(-1, 1, 1) * (x - base)).detach().requires_grad_(True)
    out = logits_from_embeds(model, path, mask.expand(STEPS, n), types.expand(STEPS, n))
    attr = []
    for k in range(out.shape[1]):
        (g,) = torch.autograd.grad(out[:, k].sum(), path, retain_graph=True)
        attr.append(((g.sum(0) / STEPS) * (x - base)[0]).sum(-1).double())
    attr = torch.stack(attr, 1)  # [tokens, classes]
    keep = [i for i, t in enumerate(ids) if t not in (2, 3)]
    attr = attr[keep]
    delta = (fx.double() - fb.double() - attr.sum(0)).abs()
    return fx, fb, attr, delta


def main():
    torch.manual_seed(0)
    model = load_model()
    out_dir = os.path.join(HERE, "explain")
    with open(os.path.join(out_dir, "bert_ig_vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    cases = []
    for text in TEXTS:
        ids = ids_of(text)
        for baseline in ("pad", "zero"):
            fx, fb, attr, delta = integrated_gradients(model, ids, baseline)
            cases.append({"text": text, "baseline": baseline, "input_ids": ids, "logits": fx.tolist(),
                          "base_logits": fb.tolist(), "attributions": attr.tolist(), "delta": delta.tolist()})
    with open(os.path.join(out_dir, "bert_ig_golden.json"), "w") as f:
        json.dump({"steps": STEPS, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
