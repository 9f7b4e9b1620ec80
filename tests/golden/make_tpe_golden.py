#!/usr/bin/env python3
"""Writes tests/golden/tune/tpe.json: what Optuna 3.1's TPE (Debian's python3-optuna) fits on fixed
trial histories.

    /usr/bin/python3 tests/golden/make_tpe_golden.py

Each case: a search space, a study direction, the TPE flags (multivariate, constant_liar) and a
history of trials (state, value, intermediate values, parameters in their internal representation).
For each group of parameters TPE models together (each parameter alone when univariate, the
intersection search space when multivariate) the golden holds the number of finished trials, the
gamma split (trial numbers below / above), both Parzen estimators' weights, bounds, mus, sigmas,
categorical weights, and their log-densities at a few points. Also default_gamma and
default_weights for a range of sizes.
"""
import json
import math
import os
import random
import warnings

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._search_space import IntersectionSearchSpace
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import (_get_observation_pairs, _split_observation_pairs, default_gamma,
                                          default_weights)
from optuna.trial import TrialState, create_trial

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACES = {
    "float": {"x": FloatDistribution(-5.0, 10.0)},
    "log_float": {"lr": FloatDistribution(1e-5, 1e-1, log=True)},
    "step_float": {"d": FloatDistribution(0.0, 0.5, step=0.05)},
    "int": {"n": IntDistribution(1, 9)},
    "step_int": {"k": IntDistribution(0, 100, step=10)},
    "log_int": {"b": IntDistribution(2, 512, log=True)},
    "categorical": {"opt": CategoricalDistribution(["adam", "sgd", "adamw", "rmsprop"])},
    "mixed": {"x": FloatDistribution(-5.0, 10.0), "lr": FloatDistribution(1e-5, 1e-1, log=True),
              "n": IntDistribution(1, 9), "opt": CategoricalDistribution(["adam", "sgd", "adamw"]),
              "d": FloatDistribution(0.0, 0.5, step=0.05)},
}


def dist_json(d):
    if isinstance(d, CategoricalDistribution):
        return {"type": "categorical", "choices": list(d.choices)}
    j = {"type": "float" if isinstance(d, FloatDistribution) else "int", "low": d.low, "high": d.high}
    if d.log:
        j["log"] = True
    if d.step is not None:
        j["step"] = d.step
    return j


def random_internal(rng, d, ties):
    """An internal value in d; `ties` reuses a few values so sorting meets equal keys."""
    if ties and rng.random() < 0.4:
        u = rng.choice([0.25, 0.5, 0.75])
    else:
        u = rng.random()
    if isinstance(d, CategoricalDistribution):
        return float(min(int(u * len(d.choices)), len(d.choices) - 1))
    if isinstance(d, IntDistribution):
        if d.log:
            return float(min(d.high, max(d.low, round(math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low)))))))
        k = min(int(u * ((d.high - d.low) // d.step + 1)), (d.high - d.low) // d.step)
        return float(d.low + k * d.step)
    if d.log:
        return math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low)))
    if d.step is not None:
        n = int(round((d.high - d.low) / d.step))
        return float(d.low + min(int(u * (n + 1)), n) * d.step)
    return d.low + u * (d.high - d.low)


def make_case(rng, space_name, n_trials, direction, multivariate, constant_liar, extras):
    space = SPACES[space_name]
    ties = rng.random() < 0.5
    trials = []
    for number in range(n_trials):
        r = rng.random()
        if extras and r < 0.12:
            state = "pruned"
        elif extras and r < 0.18:
            state = "running"
        elif extras and r < 0.22:
            state = "fail"
        else:
            state = "complete"
        params = {k: random_internal(rng, d, ties) for k, d in space.items()}
        # Univariate histories may miss a parameter (a conditional one); multivariate ones keep all
        # parameters in finished trials so the intersection search space is the whole space.
        if extras and not multivariate and len(space) > 1 and rng.random() < 0.15:
            params.pop(rng.choice(sorted(params)))
        value = round(rng.uniform(-3, 3), rng.choice([1, 6])) if ties else rng.uniform(-3, 3)
        inter = {}
        if state in ("pruned", "running", "fail") or rng.random() < 0.3:
            for s in range(rng.randint(0, 4)):
                inter[s] = value + rng.uniform(0, 1) if rng.random() > 0.08 else math.nan
        t = {"number": number, "state": state, "params": params, "intermediate": inter,
             "value": value if state == "complete" else None}
        trials.append(t)

    study = optuna.create_study(direction=direction)
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "running": TrialState.RUNNING,
              "fail": TrialState.FAIL}
    for t in trials:
        ext = {k: space[k].to_external_repr(v) for k, v in t["params"].items()}
        ft = create_trial(state=TrialState.COMPLETE, value=0.0, params=ext,
                          distributions={k: space[k] for k in ext}, intermediate_values=t["intermediate"])
        ft.state = states[t["state"]]
        ft.value = t["value"]
        study._storage.create_new_trial(study._study_id, template_trial=ft)
    assert [t.number for t in study.get_trials()] == list(range(n_trials))

    params = _ParzenEstimatorParameters(True, 1.0, True, False, default_weights, multivariate)
    if multivariate:
        inter_space = IntersectionSearchSpace(include_pruned=True).calculate(study)
        groups = [[k for k in space if k in inter_space and not inter_space[k].single()]]
        groups = [g for g in groups if g]
    else:
        groups = [[k] for k in space]
    obs_states = (TrialState.COMPLETE, TrialState.PRUNED) + ((TrialState.RUNNING,) if constant_liar else ())
    numbers = [t.number for t in study.get_trials(states=obs_states)]
    fits = []
    for names in groups:
        values, scores, _ = _get_observation_pairs(study, names, constant_liar, False)
        n = sum(s < float("inf") for s, v in scores)
        fit = {"params": names, "n": n}
        if n > 0:
            below_idx, above_idx = _split_observation_pairs(scores, default_gamma(n), None)
            config = {k: np.asarray(v, dtype=float) for k, v in values.items()}
            mask = ~np.isnan(list(config.values())[0])
            below = {k: v[below_idx[mask[below_idx]]] for k, v in config.items()}
            above = {k: v[above_idx[mask[above_idx]]] for k, v in config.items()}
            sub = {k: space[k] for k in names}
            pe_below = _ParzenEstimator(below, sub, params)
            pe_above = _ParzenEstimator(above, sub, params)
            points = pe_below.sample(np.random.RandomState(rng.randint(0, 2**31)), 6)
            for k in names:  # six more points: the first observations and the domain's ends
                d = space[k]
                ends = [0.0, float(len(d.choices) - 1)] if isinstance(d, CategoricalDistribution) else [d.low, d.high]
                extra = (list(below[k][:2]) + list(above[k][:2]) + ends)[:6]
                extra += [extra[0]] * (6 - len(extra))
                points[k] = np.concatenate([np.asarray(points[k], dtype=float), np.asarray(extra, dtype=float)])
            eval_points = {k: (v.astype(int) if isinstance(space[k], CategoricalDistribution) else v) for k, v in points.items()}
            fit.update({
                "gamma": default_gamma(n),
                "below": [numbers[i] for i in below_idx],
                "above": [numbers[i] for i in above_idx],
                "estimators": {"below": estimator_json(pe_below, names), "above": estimator_json(pe_above, names)},
                "points": {k: [float(x) for x in v] for k, v in points.items()},
                "log_pdf_below": [float(x) for x in pe_below.log_pdf(eval_points)],
                "log_pdf_above": [float(x) for x in pe_above.log_pdf(eval_points)],
            })
        fits.append(fit)

    return {
        "space": [{"name": k, "distribution": dist_json(d)} for k, d in space.items()],
        "space_name": space_name,
        "direction": direction,
        "multivariate": multivariate,
        "constant_liar": constant_liar,
        "trials": [{"number": t["number"], "state": t["state"], "value": t["value"], "params": t["params"],
                    "intermediate": {str(k): (None if math.isnan(v) else v) for k, v in t["intermediate"].items()}}
                   for t in trials],
        "fits": fits,
    }


def arr(a):
    return None if a is None else [float(x) for x in np.asarray(a).ravel()]


def tie_order_dependent(pe, names):
    """Whether the bandwidths depend on the order numpy.argsort gives equal centres: for more than
    16 components that order varies with the CPU's SIMD support, and it matters when equal centres
    are distinguishable (unequal weights, or one of them is the prior, whose bandwidth is reset)."""
    w = np.asarray(pe._weights)
    for k in names:
        mus = pe._mus[k]
        if mus is None or len(mus) <= 16:
            continue
        for m in np.unique(mus):
            idx = np.nonzero(mus == m)[0]
            if len(idx) > 1 and (np.ptp(w[idx]) > 0 or (pe._parameters.consider_prior and len(mus) - 1 in idx)):
                return True
    return False


def estimator_json(pe, names):
    out = {"weights": arr(pe._weights), "tie_order_dependent": tie_order_dependent(pe, names), "params": {}}
    for k in names:
        out["params"][k] = {
            "low": pe._low[k], "high": pe._high[k], "q": pe._q[k],
            "mus": arr(pe._mus[k]), "sigmas": arr(pe._sigmas[k]),
            "categorical_weights": None if pe._categorical_weights[k] is None
            else [[float(x) for x in row] for row in pe._categorical_weights[k]],
        }
    return out


def main():
    rng = random.Random(20261129)
    cases = []
    sizes = [0, 1, 5, 11, 12, 20, 30, 31, 45, 60]
    for space_name in SPACES:
        for i, n in enumerate(sizes):
            direction = "minimize" if i % 2 == 0 else "maximize"
            multivariate = space_name == "mixed" and i % 3 == 0
            constant_liar = i % 4 == 1
            extras = i % 3 != 2
            cases.append(make_case(rng, space_name, n, direction, multivariate, constant_liar, extras))
    # Multivariate mixed spaces of every size, with and without pruned/running trials.
    for i, n in enumerate([3, 14, 26, 40, 70]):
        cases.append(make_case(rng, "mixed", n, "minimize" if i % 2 else "maximize", True, i % 2 == 0, i % 2 == 1))
    out = {
        "optuna": optuna.__version__,
        "default_gamma": [default_gamma(n) for n in range(0, 301)],
        "default_weights": [[float(x) for x in default_weights(n)] for n in range(0, 81)],
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tune", "tpe.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    n_fits = sum(len(c["fits"]) for c in cases)
    print(f"{path}: {len(cases)} cases, {n_fits} fits (optuna {optuna.__version__})")


if __name__ == "__main__":
    main()
