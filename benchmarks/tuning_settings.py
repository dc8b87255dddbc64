"""How benchmarks/tuning.py's TPE and Hyperband settings were chosen: the same search,
in-process with Optuna, no platform.

The efficiency part of benchmarks/tuning.py compares random search with TPE + Hyperband
on the digits example through the platform (about 30 minutes a run). To choose the
settings it runs with, this script runs the same search space and budget (40 trials of
up to 10 epochs, 5 seeds) in one process: each trial trains ``examples/digits``'s
network with its functions, reports the test accuracy after each epoch, and asks the
pruner after each epoch but the last, as a live Optuna study does. Trials run one after
another (the platform runs two at once). A configuration seen before is not trained
again (its curve is kept), so variants sharing points cost nothing twice.

For each variant it prints the median, over the seeds, of the trial-epochs spent until
a trial's final accuracy first reaches the target (the median of random search's best
accuracies, as in benchmarks/tuning.py), and its ratio to random search's. The numbers
differ from the platform's (other random points, sequential trials); what it is for is
ranking settings. Its results (2026-11-29, 5 seeds) are in docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/tuning_settings.py [--variants random tpe-hb1 ...]``
(``--list`` names the variants). About 5 minutes per variant on one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "digits"))
import train as digits  # noqa: E402 - the example's network, data and accuracy

RESULTS = ROOT / "benchmarks" / "results" / "tuning_settings.json"
EPOCHS = 10
SEEDS = 5
TRIALS = 40

# name -> (sampler, its settings, Hyperband's settings or None)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, int] | None]] = {
    "random": ("random", {}, None),
    "tpe-hb1": ("tpe", {}, {"min_resource": 1, "max_resource": EPOCHS, "reduction_factor": 3}),
    "tpe-hb1-rf2": (
        "tpe",
        {},
        {"min_resource": 1, "max_resource": EPOCHS, "reduction_factor": 2},
    ),
    "tpe-mv5-hb1": (
        "tpe",
        {"multivariate": True, "n_startup_trials": 5},
        {"min_resource": 1, "max_resource": EPOCHS, "reduction_factor": 3},
    ),
    "tpe-mv5-hb1-rf2": (
        "tpe",
        {"multivariate": True, "n_startup_trials": 5},
        {"min_resource": 1, "max_resource": EPOCHS, "reduction_factor": 2},
    ),
    "tpe-mv5-hb2": (
        "tpe",
        {"multivariate": True, "n_startup_trials": 5},
        {"min_resource": 2, "max_resource": EPOCHS, "reduction_factor": 3},
    ),
}

TRAIN, TEST = digits.datasets()
CURVES: dict[str, list[float]] = {}


def curve(params: dict[str, Any]) -> list[float]:
    """Test accuracy after each epoch of one configuration (seeded: the same every time)."""
    key = json.dumps(params, sort_keys=True)
    if key not in CURVES:
        torch.manual_seed(0)
        model = digits.DigitsNet(width=params["width"])
        optimizer = torch.optim.Adam(
            model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
        )
        shuffle = torch.Generator().manual_seed(0)
        loader = DataLoader(TRAIN, batch_size=params["batch_size"], shuffle=True, generator=shuffle)
        accuracies = []
        for _ in range(EPOCHS):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            accuracies.append(digits.accuracy(model, TEST, torch.device("cpu")))
        CURVES[key] = accuracies
    return CURVES[key]


def space(trial: optuna.Trial) -> dict[str, Any]:
    """benchmarks/tuning.py's SPACE."""
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256]),
        "width": trial.suggest_float("width", 0.125, 2.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
    }


def search(variant: str, seed: int) -> list[tuple[int, float | None]]:
    """(epochs run, final accuracy or None if pruned) of each trial, in order."""
    sampler_name, settings, hyperband = VARIANTS[variant]
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if sampler_name == "random"
        else optuna.samplers.TPESampler(seed=seed, **settings)
    )
    pruner = (
        optuna.pruners.HyperbandPruner(**hyperband) if hyperband else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    trials: list[tuple[int, float | None]] = []
    for _ in range(TRIALS):
        trial = study.ask()
        accuracies = curve(space(trial))
        for epoch, accuracy in enumerate(accuracies, 1):
            trial.report(accuracy, epoch)
            if epoch < EPOCHS and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                trials.append((epoch, None))
                break
        else:
            study.tell(trial, accuracies[-1])
            trials.append((EPOCHS, accuracies[-1]))
    return trials


def to_target(trials: list[tuple[int, float | None]], target: float) -> int:
    """Trial-epochs until a final accuracy first reaches ``target`` (all if never)."""
    spent = 0
    for epochs, value in trials:
        spent += epochs
        if value is not None and value >= target:
            break
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--list", action="store_true", help="print the variants and stop")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    if args.list:
        for name, (sampler, settings, hyperband) in VARIANTS.items():
            print(f"{name:16} {sampler} {settings} hyperband={hyperband}")
        return
    variants = ["random", *(v for v in args.variants if v != "random")]
    results: dict[str, list[list[tuple[int, float | None]]]] = {}
    for variant in variants:
        t0 = time.perf_counter()
        results[variant] = [search(variant, seed) for seed in range(args.seeds)]
        print(f"{variant}: {time.perf_counter() - t0:.0f} s", flush=True)
    target = statistics.median(
        max(v for _, v in trials if v is not None) for trials in results["random"]
    )
    base = statistics.median(to_target(t, target) for t in results["random"])
    print(f"\ntarget accuracy {target:.4f} (median of random search's bests)")
    summary = {}
    for variant, runs in results.items():
        spent = [to_target(t, target) for t in runs]
        median = statistics.median(spent)
        summary[variant] = {"to_target": spent, "median": median, "ratio": base / median}
        print(
            f"  {variant:16} epochs to target {spent}  median {median:5.0f}  x{base / median:.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"target": target, "summary": summary, "searches": results}, indent=1)
    )
    print(f"\nresults written to {RESULTS}")


if __name__ == "__main__":
    main()
