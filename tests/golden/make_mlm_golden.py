#!/usr/bin/env python3
"""Golden masked-LM loss for tests/train/pretrain_test.cpp.

Rebuilds the reference BERT of make_bert_golden.py (same seed, same weights as nn/bert/model.safetensors,
whose cls.predictions.* tensors are BertForMaskedLM's head), masks fixed batches by hand and writes
BertForMaskedLM's loss: cross-entropy of the MLM logits at the labelled positions (labels -100
elsewhere), mean over those positions.

    make_mlm_golden.py [OUT.json]      # default: train/mlm_golden.json next to this script
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bert_golden as ref  # noqa: E402

MASK_ID = 4  # any id works for the math; the test's vocabulary calls id 4 [MASK]


def masked_case(ids, mask, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.full_like(ids, -100)
    inputs = ids.clone()
    u = torch.rand(ids.shape, generator=g)
    chosen = (u < 0.3) & (mask == 1)
    chosen[:, 0] = False  # [CLS]
    chosen[:, 3] = mask[:, 3] == 1  # at least one position per row
    labels[chosen] = ids[chosen]
    kind = torch.rand(ids.shape, generator=g)
    replace = torch.randint(5, ref.CONFIG["vocab_size"], ids.shape, generator=g)
    inputs[chosen & (kind < 0.8)] = MASK_ID
    rnd = chosen & (kind >= 0.8) & (kind < 0.9)
    inputs[rnd] = replace[rnd]
    return inputs, labels


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "train", "mlm_golden.json")
    torch.manual_seed(0)
    model = ref.ReferenceBert(ref.CONFIG, ref.NUM_CLASSES).eval()
    ref.randomize(model, 0.2)
    out = {"checkpoint": "nn/bert", "mask_id": MASK_ID, "cases": {}}
    for seed, name in ((11, "single"), (12, "padded")):
        ids, mask, _ = ref.cases()[name]
        inputs, labels = masked_case(ids, mask, seed)
        with torch.no_grad():
            logits = model(inputs, mask, torch.zeros_like(ids))["mlm_logits"]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                     ignore_index=-100)
        out["cases"][name] = {"input_ids": inputs.tolist(), "attention_mask": mask.tolist(),
                              "labels": labels.tolist(), "loss": float(loss)}
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
