#!/usr/bin/env python3
"""Writes tests/golden/tune/hyperband.json: what Optuna 3.1's SuccessiveHalvingPruner and
HyperbandPruner (Debian's python3-optuna) decide in simulated studies.

    /usr/bin/python3 tests/golden/make_hyperband_golden.py

Each case is a pruner configuration and an event log: trials start (ask), report one value per step
and ask the pruner after every report (Optuna's usual objective loop), and end complete at their
last step or pruned when the pruner says so. Several trials run at once (interleaved reports), some
values are NaN, some trials skip steps. The C++ test replays the log and checks every decision.
Also: Hyperband's bracket count, budgets and the bracket of trials 0..199 for a few settings.
"""
import json
import math
import os
import random
import warnings

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)


def simulate(rng, kind, opts, direction, n_trials, workers, max_steps, sparse):
    name = f"study-{rng.randint(0, 10**6)}"
    if kind == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=opts["min_resource"], max_resource=opts["max_resource"],
                                                reduction_factor=opts["reduction_factor"],
                                                bootstrap_count=opts["bootstrap_count"])
    else:
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=opts["min_resource"], reduction_factor=opts["reduction_factor"],
            min_early_stopping_rate=opts["min_early_stopping_rate"], bootstrap_count=opts["bootstrap_count"])
    study = optuna.create_study(study_name=name, direction=direction, pruner=pruner)
    events = []
    running = []  # [trial, quality, next step, last step]
    started = 0
    while started < n_trials or running:
        if started < n_trials and (len(running) < workers and (not running or rng.random() < 0.5)):
            t = study.ask({"x": FloatDistribution(0, 1)})
            events.append(["ask", t.number])
            last = max_steps - 1 if rng.random() < 0.8 else rng.randint(0, max_steps - 1)
            running.append([t, rng.uniform(0, 1), 0, last])
            started += 1
            continue
        r = rng.choice(running)
        t, quality, step, last = r
        if rng.random() < 0.04:
            value = math.nan
        else:
            value = round(quality + 1.0 / (1 + step) + rng.uniform(0, 0.05), rng.choice([2, 6]))
        t.report(value, step)
        decision = bool(t.should_prune())
        events.append(["report", t.number, step, None if math.isnan(value) else value, decision])
        if decision:
            study.tell(t, state=TrialState.PRUNED)
            events.append(["tell", t.number, "pruned"])
            running.remove(r)
        elif step >= last:
            final = value if not math.isnan(value) else 1.0
            study.tell(t, final)
            events.append(["tell", t.number, "complete", final])
            running.remove(r)
        else:
            r[2] = step + (rng.randint(1, 4) if sparse and rng.random() < 0.3 else 1)
            r[2] = min(r[2], last)
    return {"kind": kind, "options": opts, "study_name": name, "direction": direction, "events": events,
            "pruned": sum(1 for e in events if e[0] == "tell" and e[2] == "pruned")}


def brackets(min_resource, max_resource, rf, study_name):
    pruner = optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max_resource, reduction_factor=rf)
    study = optuna.create_study(study_name=study_name, pruner=pruner)
    pruner._try_initialization(study)

    class T:
        def __init__(self, n):
            self.number = n

    return {"min_resource": min_resource, "max_resource": max_resource, "reduction_factor": rf,
            "study_name": study_name, "n_brackets": pruner._n_brackets, "budgets": pruner._trial_allocation_budgets,
            "brackets": [pruner._get_bracket_id(study, T(n)) for n in range(200)]}


def main():
    rng = random.Random(20261129)
    cases = []
    for i in range(40):
        hyperband = i % 2 == 0
        rf = rng.choice([2, 3, 3, 4])
        max_steps = rng.choice([9, 12, 27, 30])
        if hyperband:
            opts = {"min_resource": rng.choice([1, 1, 2, 3]), "max_resource": max_steps, "reduction_factor": rf,
                    "bootstrap_count": rng.choice([0, 0, 0, 2])}
        else:
            opts = {"min_resource": rng.choice([1, 1, 2, 3]), "reduction_factor": rf,
                    "min_early_stopping_rate": rng.choice([0, 0, 1]), "bootstrap_count": rng.choice([0, 0, 0, 2])}
        cases.append(simulate(rng, "hyperband" if hyperband else "successive_halving", opts,
                              rng.choice(["minimize", "maximize"]), rng.randint(8, 45), rng.choice([1, 2, 4]),
                              max_steps, sparse=i % 5 == 4))
    out = {
        "optuna": optuna.__version__,
        "defaults": {"successive_halving": {"reduction_factor": 4, "min_early_stopping_rate": 0, "bootstrap_count": 0},
                     "hyperband": {"min_resource": 1, "reduction_factor": 3, "bootstrap_count": 0}},
        "brackets": [brackets(1, 27, 3, "s"), brackets(1, 81, 3, "tune-lr"), brackets(1, 100, 3, "a"),
                     brackets(2, 30, 2, "b"), brackets(3, 9, 3, ""), brackets(1, 1000, 4, "kiln-study")],
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tune", "hyperband.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    decisions = sum(1 for c in cases for e in c["events"] if e[0] == "report")
    pruned = sum(c["pruned"] for c in cases)
    print(f"{path}: {len(cases)} cases, {decisions} decisions, {pruned} pruned (optuna {optuna.__version__})")


if __name__ == "__main__":
    main()
