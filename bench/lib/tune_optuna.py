#!/usr/bin/env python3
"""Optuna 3.1's TPE on the functions of bench/tune_functions.cpp, in-process (the Optuna half of
bench/tune_vs_optuna.sh). Same functions, same spaces, TPESampler with its defaults.

    tune_optuna.py quality FUNCTION SEEDS TRIALS   -> one line per seed: "seed best_value"
    tune_optuna.py overhead N_HISTORY REPEATS      -> "SAMPLER_CPU SAMPLER_WALL ROUND_CPU ROUND_WALL":
        seconds per suggestion (process CPU time and wall clock) of
        the Hartmann 6-D space, (1) the sampler's calls alone -- infer_relative_search_space,
        sample_relative and one sample_independent per parameter, exactly what study.ask() and the
        suggest calls ask of TPESampler, its reading of the history from the in-memory storage
        included (the scope Kiln's TpeSampler::sample() is timed with) -- and (2) the whole
        ask() + 6 x suggest_float() + tell() round, Optuna's trial bookkeeping included
"""
import math
import sys
import time
import warnings

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)

ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def branin(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6_value(x):
    s = 0.0
    for i in range(4):
        s += ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
    return -s


def hartmann6(trial):
    return hartmann6_value([trial.suggest_float(f"x{j}", 0, 1) for j in range(6)])


def rosenbrock4_log(trial):
    x = [trial.suggest_float(f"x{j}", 1e-2, 10, log=True) for j in range(4)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


def mixed(trial):
    offset = {"a": 0.5, "b": 0.0, "c": 1.0, "d": 2.0}
    shift = {"a": 1.0, "b": -2.0, "c": 0.0, "d": 3.0}
    k = trial.suggest_categorical("kind", ["a", "b", "c", "d"])
    x = trial.suggest_float("x", -5, 5)
    z = trial.suggest_float("z", 0, 1)
    n = trial.suggest_int("n", 0, 10)
    return offset[k] + (x - shift[k]) ** 2 + (z - 0.3) ** 2 + 0.1 * abs(n - 3)


FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "rosenbrock4_log": rosenbrock4_log, "mixed": mixed}


def main():
    mode = sys.argv[1]
    if mode == "quality":
        fn, seeds, trials = FUNCTIONS[sys.argv[2]], int(sys.argv[3]), int(sys.argv[4])
        for seed in range(seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(fn, n_trials=trials)
            print(seed, repr(study.best_value), flush=True)
    elif mode == "overhead":
        n, repeats = int(sys.argv[2]), int(sys.argv[3])
        rng = np.random.RandomState(0)
        dists = {f"x{j}": FloatDistribution(0, 1) for j in range(6)}
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
        trials = []
        for _ in range(n):
            x = rng.uniform(0, 1, 6)
            trials.append(create_trial(params={f"x{j}": float(x[j]) for j in range(6)}, distributions=dists,
                                       value=hartmann6_value(x)))
        study.add_trials(trials)
        sampler = study.sampler
        # One untimed round first (lazy imports, caches), as both loops below would otherwise
        # charge it to whichever runs first.
        trial = study.ask()
        for j in range(6):
            trial.suggest_float(f"x{j}", 0, 1)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        # (1) The sampler's calls alone. The trial they sample for is created (ask) and failed
        # (tell) outside the clock, so the history the sampler sees never grows.
        sampler_cpu = sampler_wall = 0.0
        for _ in range(repeats):
            trial = study.ask()
            frozen = study._storage.get_trial(trial._trial_id)
            c0, t0 = time.process_time(), time.perf_counter()
            space = sampler.infer_relative_search_space(study, frozen)
            sampler.sample_relative(study, frozen, space)
            for name, dist in dists.items():
                sampler.sample_independent(study, frozen, name, dist)
            sampler_cpu += time.process_time() - c0
            sampler_wall += time.perf_counter() - t0
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        # (2) The whole round a user's loop pays: ask() + suggests + tell().
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            trial = study.ask()
            for j in range(6):
                trial.suggest_float(f"x{j}", 0, 1)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # failed trials are not observations
        round_cpu, round_wall = time.process_time() - c0, time.perf_counter() - t0
        print(sampler_cpu / repeats, sampler_wall / repeats, round_cpu / repeats, round_wall / repeats)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
