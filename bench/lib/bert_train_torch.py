"""python3-torch side of bench/bert_train_vs_torch.sh: one training step of the reference BERT of
tests/golden/make_bert_golden.py (encoder + pooler + classifier, dropout 0) as bench/bert_train_step.cpp
times Kiln's: forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, weight decay 0.01
off biases and LayerNorm weights, as Hugging Face's Trainer). Two warm-up steps, median of ROUNDS.

    bert_train_torch.py THREADS LABEL [PRESET] [BATCH] [SEQ] [ROUNDS]     # prints one JSON line
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden"))
from make_bert_golden import ReferenceBert  # noqa: E402

PRESETS = {"tiny": (2, 128, 2, 512), "mini": (4, 256, 4, 1024), "small": (4, 512, 8, 2048),
           "medium": (8, 512, 8, 2048), "base": (12, 768, 12, 3072)}


class Classifier(torch.nn.Module):
    """ReferenceBert up to the classifier (its MLM head is not used)."""

    def __init__(self, config):
        super().__init__()
        self.m = ReferenceBert(config, 2)

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
    preset = sys.argv[3] if len(sys.argv) > 3 else "mini"
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    seq = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers, hidden, heads, inter = PRESETS[preset]
    config = {"vocab_size": 30522, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": inter, "max_position_embeddings": 512, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "pad_token_id": 0}
    model = Classifier(config).train()
    used = [(n, p) for n, p in model.named_parameters() if not n.startswith("m.mlm")]
    no_decay = lambda n: n.endswith("bias") or "norm" in n  # the reference's LayerNorms are *_norm
    groups = [{"params": [p for n, p in used if not no_decay(n)], "weight_decay": 0.01},
              {"params": [p for n, p in used if no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-4)
    ids = torch.randint(1, 30522, (batch, seq))
    mask, types = torch.ones(batch, seq, dtype=torch.int64), torch.zeros(batch, seq, dtype=torch.int64)
    target = torch.randint(0, 2, (batch,))
    params = [p for _, p in used]

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(ids, mask, types), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()
    step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"system": label, "threads": threads, "preset": preset, "batch": batch, "seq": seq,
                      "step_ms": round(1000 * times[len(times) // 2], 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
