#!/usr/bin/python3
"""Golden values for the train module's LR schedules, losses, optimizers and gradient clipping.

Reference: Debian's python3-torch 1.13 (and python3-sklearn for balanced class weights).
Regenerate from the repository root:

    /usr/bin/python3 tests/golden/make_train_golden.py

Writes tests/golden/train/{lr_schedule,losses,optimizer,clip_grad_norm}.json. Inputs are stored next
to the expected outputs so the C++ tests rebuild exactly the same tensors. Floats are written with
repr(), which round-trips doubles; float32 cases store float32 values exactly.
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    payload = {"generator": "tests/golden/make_train_golden.py", "torch_version": torch.__version__, **payload}
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


def tolist(t):
    return t.detach().to(torch.float64).tolist()


# ---------------------------------------------------------------------------------------------
# LR schedules: LambdaLR with the lambdas documented in include/kiln/train/lr_schedule.h.


def warmup(step, w):
    return step / max(1, w)


def lam_warmup_cosine(w, total):
    def f(step):
        if step < w:
            return warmup(step, w)
        progress = (step - w) / max(1, total - w)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return f


def lam_linear(w, total):
    def f(step):
        if step < w:
            return warmup(step, w)
        return max(0.0, (total - step) / max(1, total - w))
    return f


def lam_constant(w, total):
    return lambda step: warmup(step, w) if step < w else 1.0


def lam_step(w, step_size, gamma):
    return lambda step: warmup(step, w) if step < w else gamma ** ((step - w) // step_size)


def run_scheduler(make_sched, base_lr, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    lrs = {}
    for s in range(max(steps) + 1):
        if s in steps:
            lrs[s] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    return [lrs[s] for s in steps]


def probe_steps(w, total):
    cand = [0, 1, w - 1, w, w + 1, (w + total) // 2, total - 1, total, total + 5]
    return sorted({s for s in cand if s >= 0})


def make_schedules():
    base_lr = 0.3
    cases = []
    for kind, lam in (("warmup_cosine", lam_warmup_cosine), ("linear", lam_linear), ("constant", lam_constant)):
        for w, total in ((0, 10), (3, 10), (10, 10), (5, 100), (1, 2), (0, 1)):
            steps = probe_steps(w, total)
            lrs = run_scheduler(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lam(w, total)), base_lr, steps)
            cases.append({"kind": kind, "warmup_steps": w, "total_steps": total, "base_lr": base_lr,
                          "steps": steps, "lr": lrs})
    for w, total, step_size, gamma in ((0, 20, 3, 0.5), (4, 20, 5, 0.1), (0, 20, 1, 0.9)):
        steps = sorted(set(probe_steps(w, total) + [w + step_size - 1, w + step_size, w + 2 * step_size]))
        lrs = run_scheduler(lambda o: torch.optim.lr_scheduler.LambdaLR(o, lam_step(w, step_size, gamma)),
                            base_lr, steps)
        case = {"kind": "step", "warmup_steps": w, "total_steps": total, "step_size": step_size, "gamma": gamma,
                "base_lr": base_lr, "steps": steps, "lr": lrs}
        if w == 0:
            case["steplr"] = run_scheduler(
                lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=step_size, gamma=gamma), base_lr, steps)
        cases.append(case)
    ratios = [{"warmup_ratio": r, "total_steps": t, "warmup_steps": int(r * t)}
              for r, t in ((0.1, 25), (0.29, 100), (0.06, 1000), (1.0, 7), (0.5, 3), (0.0, 50), (0.1, 30))]
    write("lr_schedule.json", {"cases": cases, "warmup_ratio": ratios})


# ---------------------------------------------------------------------------------------------
# Losses: value and gradient w.r.t. the logits.


def focal_reference(logits, y, gamma, alpha, weight):
    log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
    p = log_p.exp()
    per = -((1.0 - p) ** gamma) * log_p
    if alpha is not None:
        a = torch.tensor(alpha, dtype=logits.dtype)
        per = per * (a[0] if len(alpha) == 1 else a[y])
    if weight is None:
        return per.mean()
    w = torch.tensor(weight, dtype=logits.dtype)[y]
    return (w * per).sum() / w.sum()


def make_losses():
    gen = torch.Generator().manual_seed(1234)
    cases = []

    def add(name, kind, b, c, dtype="float64", scale=1.0, class_weight="none", class_weights=None, counts=None,
            gamma=2.0, alpha=None, smoothing=0.0):
        logits = (torch.randn(b, c, generator=gen, dtype=torch.float64) * scale).to(DTYPES[dtype])
        y = torch.randint(0, c, (b,), generator=gen)
        if counts is None:
            counts = [int((y == k).sum()) + 1 for k in range(c)]
        weight = None
        if class_weight == "balanced":
            labels = np.repeat(np.arange(c), counts)
            weight = compute_class_weight("balanced", classes=np.arange(c), y=labels).tolist()
        elif class_weight == "explicit":
            weight = class_weights
        x = logits.clone().requires_grad_(True)
        if kind == "cross_entropy":
            w = None if weight is None else torch.tensor(weight, dtype=x.dtype)
            loss = F.cross_entropy(x, y, weight=w, label_smoothing=smoothing)
        else:
            loss = focal_reference(x, y, gamma, alpha, weight)
        loss.backward()
        cases.append({
            "name": name, "dtype": dtype,
            "options": {"kind": kind, "class_weight": class_weight, "class_weights": class_weights or [],
                        "focal_gamma": gamma, "focal_alpha": alpha or [], "label_smoothing": smoothing},
            "class_counts": counts, "resolved_class_weights": weight or [],
            "logits": tolist(logits), "targets": y.tolist(),
            "loss": loss.item(), "grad": tolist(x.grad),
        })

    add("ce_plain", "cross_entropy", 8, 5)
    add("ce_explicit_weights", "cross_entropy", 10, 4, class_weight="explicit", class_weights=[0.5, 2.0, 1.0, 3.0])
    add("ce_balanced", "cross_entropy", 12, 3, class_weight="balanced", counts=[50, 7, 13])
    add("ce_smoothing", "cross_entropy", 8, 6, smoothing=0.1)
    add("ce_weights_smoothing", "cross_entropy", 16, 5, class_weight="explicit",
        class_weights=[1.0, 0.2, 4.0, 0.0, 2.5], smoothing=0.2)
    add("ce_balanced_smoothing", "cross_entropy", 9, 3, class_weight="balanced", counts=[3, 30, 9], smoothing=0.05)
    add("ce_large_logits", "cross_entropy", 8, 4, scale=40.0, class_weight="explicit",
        class_weights=[1.0, 2.0, 3.0, 4.0])
    add("focal_gamma2", "focal", 8, 5, gamma=2.0)
    add("focal_gamma0_equals_ce", "focal", 8, 5, gamma=0.0, class_weight="explicit",
        class_weights=[1.0, 2.0, 0.5, 1.5, 3.0])
    add("focal_gamma_half", "focal", 10, 3, gamma=0.5)
    add("focal_alpha_scalar", "focal", 8, 4, gamma=2.0, alpha=[0.25])
    add("focal_alpha_per_class", "focal", 8, 4, gamma=1.0, alpha=[0.1, 0.4, 0.3, 0.2])
    add("focal_binary_alpha", "focal", 12, 2, gamma=2.0, alpha=[0.75, 0.25])
    add("focal_balanced_alpha", "focal", 12, 3, gamma=1.5, class_weight="balanced", counts=[40, 4, 16],
        alpha=[0.2, 0.5, 0.3])
    add("focal_large_logits", "focal", 8, 4, scale=20.0, gamma=2.0)
    add("ce_float32_weights_smoothing", "cross_entropy", 16, 6, dtype="float32", class_weight="explicit",
        class_weights=[1.0, 2.0, 0.5, 1.0, 3.0, 0.25], smoothing=0.1)
    add("focal_float32", "focal", 16, 6, dtype="float32", gamma=2.0, alpha=[0.3], class_weight="balanced",
        counts=[5, 10, 20, 40, 80, 1])

    balanced = []
    for counts in ([10, 10], [50, 7, 13], [1, 2, 3, 4], [999, 1]):
        labels = np.repeat(np.arange(len(counts)), counts)
        balanced.append({"counts": counts,
                         "weights": compute_class_weight("balanced", classes=np.arange(len(counts)), y=labels).tolist()})
    write("losses.json", {"cases": cases, "balanced_class_weights": balanced})


# ---------------------------------------------------------------------------------------------
# Optimizers: N steps on a quadratic, grad = a * (p - t) per parameter tensor, in float64.


def make_optimizers():
    gen = torch.Generator().manual_seed(99)
    shapes = [[3, 4], [3]]
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    curv = [torch.rand(s, generator=gen, dtype=torch.float64) * 2 + 0.1 for s in shapes]
    target = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    problem = {"shapes": shapes, "init": [t.tolist() for t in init], "a": [t.tolist() for t in curv],
               "t": [t.tolist() for t in target]}

    def run(options, steps, schedule=None):
        params = [p.clone().requires_grad_(True) for p in init]
        if options["kind"] == "adamw":
            opt = torch.optim.AdamW(params, lr=options["lr"], betas=tuple(options["betas"]), eps=options["eps"],
                                    weight_decay=options["weight_decay"])
        else:
            opt = torch.optim.SGD(params, lr=options["lr"], momentum=options["momentum"],
                                  weight_decay=options["weight_decay"], nesterov=options["nesterov"])
        sched = None
        if schedule is not None:
            lam = {"warmup_cosine": lam_warmup_cosine, "linear": lam_linear}[schedule["kind"]](
                schedule["warmup_steps"], schedule["total_steps"])
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
        lrs = []
        for _ in range(steps):
            with torch.no_grad():
                for p, a, t in zip(params, curv, target):
                    p.grad = a * (p - t)
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
        return [tolist(p) for p in params], lrs

    def opt_opts(kind, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8, momentum=0.0, nesterov=False):
        return {"kind": kind, "lr": lr, "weight_decay": weight_decay, "betas": list(betas), "eps": eps,
                "momentum": momentum, "nesterov": nesterov}

    cases = []
    for name, options, steps, schedule in (
            ("adamw_wd", opt_opts("adamw", 0.1, 0.01), 5, None),
            ("adamw_betas_eps_wd", opt_opts("adamw", 0.05, 0.1, betas=(0.8, 0.99), eps=1e-6), 5, None),
            ("adamw_no_wd", opt_opts("adamw", 0.01, 0.0), 5, None),
            ("sgd_plain", opt_opts("sgd", 0.1, 0.0), 5, None),
            ("sgd_momentum", opt_opts("sgd", 0.1, 0.0, momentum=0.9), 5, None),
            ("sgd_nesterov_wd", opt_opts("sgd", 0.05, 0.01, momentum=0.9, nesterov=True), 5, None),
            ("adamw_warmup_cosine", opt_opts("adamw", 0.1, 0.01), 12,
             {"kind": "warmup_cosine", "warmup_steps": 3, "total_steps": 10}),
            ("sgd_momentum_linear", opt_opts("sgd", 0.2, 0.0, momentum=0.5), 8,
             {"kind": "linear", "warmup_steps": 2, "total_steps": 8}),
    ):
        final, lrs = run(options, steps, schedule)
        case = {"name": name, "options": options, "steps": steps, "params": final, "lr": lrs}
        if schedule is not None:
            case["schedule"] = schedule
        cases.append(case)
    write("optimizer.json", {"problem": problem, "cases": cases})


# ---------------------------------------------------------------------------------------------
# Gradient clipping by global L2 norm.


def make_clip():
    gen = torch.Generator().manual_seed(7)
    cases = []
    for name, dtype, shapes, scale, max_norm in (
            ("clips_float64", "float64", [[3, 4], [5], [2, 2]], 1.0, 1.0),
            ("no_clip_float64", "float64", [[3, 4], [5]], 1.0, 100.0),
            ("clips_float32", "float32", [[4, 4], [7], [1]], 3.0, 0.5),
            ("with_missing_grad", "float64", [[2, 3], None, [4]], 2.0, 2.0),
            ("infinite_max_norm", "float32", [[3, 3]], 1.0, math.inf),
    ):
        params, grads = [], []
        for s in shapes:
            shape = s if s is not None else [2]
            p = torch.zeros(shape, dtype=DTYPES[dtype], requires_grad=True)
            g = None
            if s is not None:
                g = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(DTYPES[dtype])
                p.grad = g.clone()
            params.append(p)
            grads.append(None if g is None else tolist(g))
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        cases.append({"name": name, "dtype": dtype, "shapes": [s if s is not None else [2] for s in shapes],
                      "max_norm": "inf" if math.isinf(max_norm) else max_norm, "grads": grads,
                      "total_norm": total.item(),
                      "clipped": [None if p.grad is None else tolist(p.grad) for p in params]})
    write("clip_grad_norm.json", {"cases": cases})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    make_schedules()
    make_losses()
    make_optimizers()
    make_clip()
