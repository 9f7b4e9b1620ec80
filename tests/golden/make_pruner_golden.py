#!/usr/bin/env python3
"""Writes tests/golden/tune/pruner.json: what Optuna 3.1's PercentilePruner / MedianPruner (Debian's
python3-optuna) decides on fixed trial histories.

    /usr/bin/python3 tests/golden/make_pruner_golden.py

Each case: pruner options, study direction, the study's other trials (state + intermediate values,
NaN written as null), the trial being judged (its intermediate values), and Optuna's decision.
Histories are random but seeded, with NaNs, missing steps, pruned/failed trials (which Optuna
ignores), warm-up and interval settings, and every percentile edge.
"""
import json
import math
import os
import random
import warnings

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)

STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}


def enc(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def history(rng, max_step):
    steps = sorted(rng.sample(range(max_step + 1), rng.randint(1, max_step + 1)))
    out = {}
    for s in steps:
        r = rng.random()
        out[s] = math.nan if r < 0.07 else round(rng.uniform(0, 1), rng.choice([1, 2, 6]))
    return out


def case(rng, i):
    opts = {
        "percentile": rng.choice([0.0, 25.0, 50.0, 50.0, 75.0, 100.0, 33.3]),
        "n_startup_trials": rng.choice([0, 1, 5, 5]),
        "n_warmup_steps": rng.choice([0, 0, 2]),
        "interval_steps": rng.choice([1, 1, 2, 3]),
        "n_min_trials": rng.choice([1, 1, 3]),
    }
    direction = rng.choice(["minimize", "maximize"])
    max_step = rng.randint(0, 6)
    others = []
    for _ in range(rng.randint(0, 9)):
        state = rng.choice(["complete", "complete", "complete", "pruned", "fail"])
        iv = history(rng, max_step)
        others.append({"state": state, "intermediate": iv})
    judged = history(rng, max_step) if rng.random() > 0.05 else {}
    if rng.random() < 0.05 and judged:
        judged = {s: math.nan for s in judged}

    study = optuna.create_study(direction=direction, pruner=optuna.pruners.NopPruner())
    dist = {"x": FloatDistribution(0, 1)}
    for o in others:
        st = STATES[o["state"]]
        value = 0.5 if st == TrialState.COMPLETE else None
        study.add_trial(create_trial(state=st, value=value, params={"x": 0.5}, distributions=dist,
                                     intermediate_values=o["intermediate"]))
    frozen = create_trial(state=TrialState.COMPLETE, value=0.5, params={"x": 0.5}, distributions=dist,
                          intermediate_values=judged)
    frozen.state = TrialState.RUNNING
    frozen.value = None
    pruner = optuna.pruners.PercentilePruner(opts["percentile"], opts["n_startup_trials"], opts["n_warmup_steps"],
                                             opts["interval_steps"], n_min_trials=opts["n_min_trials"])
    decision = bool(pruner.prune(study, frozen))
    return {
        "options": opts,
        "direction": direction,
        "trials": [{"state": o["state"], "intermediate": {str(k): enc(v) for k, v in o["intermediate"].items()}}
                   for o in others],
        "judged": {str(k): enc(v) for k, v in judged.items()},
        "prune": decision,
    }


def main():
    rng = random.Random(20261129)
    cases = [case(rng, i) for i in range(400)]
    # MedianPruner is PercentilePruner(50, n_startup_trials=5, n_warmup_steps=0, interval_steps=1, n_min_trials=1).
    m = optuna.pruners.MedianPruner()
    median = {"percentile": m._percentile, "n_startup_trials": m._n_startup_trials,
              "n_warmup_steps": m._n_warmup_steps, "interval_steps": m._interval_steps,
              "n_min_trials": m._n_min_trials}
    out = {"optuna": optuna.__version__, "median_pruner_defaults": median, "cases": cases,
           "pruned_cases": sum(c["prune"] for c in cases)}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tune", "pruner.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {len(cases)} cases, {out['pruned_cases']} pruned (optuna {optuna.__version__})")


if __name__ == "__main__":
    main()
