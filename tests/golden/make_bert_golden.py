#!/usr/bin/env python3
"""Golden BERT checkpoint and outputs for tests/nn/bert_golden_test.cpp.

A hand-written reference of Hugging Face's BertModel / BertForSequenceClassification /
BertForMaskedLM head (transformers' modeling_bert.py math: post-LN layers, additive attention mask
(1 - mask) * finfo(float32).min, erf GELU, pooler tanh(dense(h[:, 0]))), built from nn.Embedding,
nn.Linear and nn.LayerNorm only (Debian's python3-torch TransformerEncoderLayer crashes under
Python 3.11). Random weights are written with Hugging Face names as safetensors by hand (the
format: 8-byte little-endian header length, JSON header, raw little-endian data), so neither the
safetensors nor the transformers package is needed.

    make_bert_golden.py [OUTDIR]      # default: nn/bert/ next to this script

Files written (small: keep them so):
  config.json        BertConfig fields (vocab 100, hidden 32, 2 layers, 4 heads, intermediate 64, max_pos 64)
  model.safetensors  bert.* (BertForSequenceClassification layout), classifier.* (3 classes) and
                     cls.predictions.* (the MLM head; its decoder tied to the word embeddings)
  cases.safetensors  per case C in single, padded, paired: C.input_ids, C.attention_mask,
                     C.token_type_ids (int64 [4, 12]) and expected float32 outputs
                     C.last_hidden_state, C.pooler_output, C.logits_cls, C.mean_pooled,
                     C.logits_mean, C.mlm_logits

The module is importable: bench/bert_vs_torch.sh times ReferenceBert at BERT-base size.
"""
import json
import math
import os
import struct
import sys

import torch
from torch import nn

CONFIG = {
    "model_type": "bert",
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "pad_token_id": 0,
    "architectures": ["BertForSequenceClassification"],
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
}
NUM_CLASSES = 3


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i, eps = c["hidden_size"], c["intermediate_size"], c["layer_norm_eps"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attention_dense, self.attention_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=eps)
        self.intermediate, self.output_dense = nn.Linear(h, i), nn.Linear(i, h)
        self.output_norm = nn.LayerNorm(h, eps=eps)

    def names(self, prefix):
        return {
            prefix + "attention.self.query": self.query, prefix + "attention.self.key": self.key,
            prefix + "attention.self.value": self.value, prefix + "attention.output.dense": self.attention_dense,
            prefix + "attention.output.LayerNorm": self.attention_norm, prefix + "intermediate.dense": self.intermediate,
            prefix + "output.dense": self.output_dense, prefix + "output.LayerNorm": self.output_norm,
        }

    def forward(self, x, additive_mask):
        b, n, h = x.shape
        d = h // self.heads

        def split(t):
            return t.view(b, n, self.heads, d).permute(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + additive_mask
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(b, n, h)
        a = self.attention_norm(self.attention_dense(context) + x)
        f = self.output_dense(nn.functional.gelu(self.intermediate(a)))
        return self.output_norm(f + a)


class ReferenceBert(nn.Module):
    """BertModel + pooler + classifier + MLM head, eval-mode math (no dropout)."""

    def __init__(self, c, num_classes):
        super().__init__()
        h, eps = c["hidden_size"], c["layer_norm_eps"]
        self.word = nn.Embedding(c["vocab_size"], h, padding_idx=c["pad_token_id"])
        self.position = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type = nn.Embedding(c["type_vocab_size"], h)
        self.emb_norm = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.pooler = nn.Linear(h, h)
        self.classifier = nn.Linear(h, num_classes)
        self.mlm_dense, self.mlm_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=eps)
        self.mlm_bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def named_tensors(self):
        """Hugging Face names -> tensors (BertForSequenceClassification + the BertForMaskedLM head)."""
        out = {
            "bert.embeddings.word_embeddings.weight": self.word.weight,
            "bert.embeddings.position_embeddings.weight": self.position.weight,
            "bert.embeddings.token_type_embeddings.weight": self.token_type.weight,
            "bert.embeddings.LayerNorm.weight": self.emb_norm.weight,
            "bert.embeddings.LayerNorm.bias": self.emb_norm.bias,
        }
        for i, layer in enumerate(self.layers):
            for name, mod in layer.names("bert.encoder.layer.%d." % i).items():
                out[name + ".weight"], out[name + ".bias"] = mod.weight, mod.bias
        for name, mod in {"bert.pooler.dense": self.pooler, "classifier": self.classifier,
                          "cls.predictions.transform.dense": self.mlm_dense,
                          "cls.predictions.transform.LayerNorm": self.mlm_norm}.items():
            out[name + ".weight"], out[name + ".bias"] = mod.weight, mod.bias
        out["cls.predictions.bias"] = self.mlm_bias
        return out

    def forward(self, input_ids, attention_mask, token_type_ids):
        n = input_ids.shape[1]
        x = self.word(input_ids) + self.token_type(token_type_ids)
        x = x + self.position(torch.arange(n).unsqueeze(0))
        x = self.emb_norm(x)
        additive = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, additive)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        m = attention_mask.to(torch.float32).unsqueeze(-1)
        mean = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        mlm = self.mlm_norm(nn.functional.gelu(self.mlm_dense(x)))
        mlm_logits = nn.functional.linear(mlm, self.word.weight, self.mlm_bias)
        return {"last_hidden_state": x, "pooler_output": pooled, "logits_cls": self.classifier(pooled),
                "mean_pooled": mean, "logits_mean": self.classifier(mean), "mlm_logits": mlm_logits}


def randomize(model, std):
    """Weights drawn so that every output depends on every parameter (LayerNorm weights near 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
        model.word.weight[CONFIG["pad_token_id"]].zero_()


DTYPES = {torch.float32: ("F32", 4), torch.int64: ("I64", 8)}


def write_safetensors(path, tensors):
    """tensors: name -> torch tensor (float32 or int64). Data ordered by decreasing element size, then
    by the given order; header padded with spaces to a multiple of 8 bytes (as Kiln writes)."""
    items = sorted(tensors.items(), key=lambda kv: -DTYPES[kv[1].dtype][1])
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in items:
        a = t.detach().contiguous().numpy()
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def cases():
    g = torch.Generator().manual_seed(5)
    b, n = 4, 12
    ids = torch.randint(1, CONFIG["vocab_size"], (b, n), generator=g)
    ids[:, 0] = 2  # [CLS]
    full = torch.ones(b, n, dtype=torch.int64)
    lengths = [9, 7, 5, 9]  # columns 9.. are padding in every row
    padded_mask = torch.tensor([[1] * k + [0] * (n - k) for k in lengths])
    padded_ids = ids * padded_mask
    second = [5, 4, 3, 6]  # the first segment's length per row (paired: token types 0 then 1)
    types = torch.tensor([[0] * s + [1] * (k - s) + [0] * (n - k) for s, k in zip(second, lengths)])
    return {
        "single": (ids, full, torch.zeros(b, n, dtype=torch.int64)),
        "padded": (padded_ids, padded_mask, torch.zeros(b, n, dtype=torch.int64)),
        "paired": (padded_ids, padded_mask, types),
    }


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn", "bert")
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    model = ReferenceBert(CONFIG, NUM_CLASSES).eval()
    randomize(model, 0.2)
    with open(os.path.join(outdir, "config.json"), "w") as fh:
        json.dump(CONFIG, fh, indent=2)
        fh.write("\n")
    write_safetensors(os.path.join(outdir, "model.safetensors"), model.named_tensors())
    out = {}
    with torch.no_grad():
        for case, (ids, mask, types) in cases().items():
            out[case + ".input_ids"], out[case + ".attention_mask"], out[case + ".token_type_ids"] = ids, mask, types
            for name, t in model(ids, mask, types).items():
                out[case + "." + name] = t
    write_safetensors(os.path.join(outdir, "cases.safetensors"), out)


if __name__ == "__main__":
    main()
