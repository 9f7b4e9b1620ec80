"""python3-torch side of bench/bert_vs_torch.sh: the reference BERT of tests/golden/make_bert_golden.py
at BERT-base size (random weights), eval mode under torch.inference_mode, as bench/bert_forward.cpp
measures Kiln: batch 8 x 128 tokens (best of 5, sequences/s) and batch 1 x 128 (median of 15, ms).

    bert_torch.py THREADS LABEL [ROUNDS] [LATENCY_ROUNDS]     # prints one JSON line (defaults 5, 15)
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden"))
from make_bert_golden import ReferenceBert  # noqa: E402

BASE = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "pad_token_id": 0}


class Encoder(torch.nn.Module):
    """ReferenceBert up to the classifier (no MLM head: Kiln's forward has none)."""

    def __init__(self):
        super().__init__()
        self.m = ReferenceBert(BASE, 2)

    def forward(self, ids, mask, types):
        m = self.m
        x = m.word(ids) + m.token_type(types) + m.position(torch.arange(ids.shape[1]).unsqueeze(0))
        x = m.emb_norm(x)
        additive = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        for layer in m.layers:
            x = layer(x, additive)
        return m.classifier(torch.tanh(m.pooler(x[:, 0])))


def main():
    threads, label = int(sys.argv[1]), sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    latency_rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Encoder().eval()

    def batch(n):
        return (torch.randint(1, BASE["vocab_size"], (n, 128)), torch.ones(n, 128, dtype=torch.int64),
                torch.zeros(n, 128, dtype=torch.int64))

    b8, b1 = batch(8), batch(1)
    with torch.inference_mode():
        model(*b8)
        model(*b1)
        best = 1e9
        for _ in range(rounds):
            t0 = time.perf_counter()
            model(*b8)
            best = min(best, time.perf_counter() - t0)
        lat = []
        for _ in range(latency_rounds):
            t0 = time.perf_counter()
            model(*b1)
            lat.append(time.perf_counter() - t0)
    lat.sort()
    print(json.dumps({"system": label, "threads": threads, "throughput_seq_s": round(8 / best, 2),
                      "latency_ms": round(1000 * lat[len(lat) // 2], 2)}))


if __name__ == "__main__":
    main()
