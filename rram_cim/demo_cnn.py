"""The digits CNN on the chip's MVM path, as `rram-cim demo --task cnn` and `rram-cim bench cnn` run it.

Trains the network of `host.cnn` (float, then quantization- and noise-aware against the chip's plan),
maps it onto the cores (`host.cnn_chip`), programs a `ModelTransport` chip (default device, neuron noise
on, the host's default P&V recipes, offsets calibrated) and scores the held-out digits: float, quantized,
chip model, chip model after `chip.relax` (docs/cnn.md). What both commands share lives here: the run with
its progress bars, the report's summary and the plot; each command keeps its own arguments.
"""

from __future__ import annotations

import pathlib
import sys
import time

from .config import CONFIGS, ChipConfig
from .demo_report import draw_confusion
from .progress import Bar

__all__ = ["DEFAULT_CONFIG", "OUTPUTS", "PLOT", "TARGET", "check_fits", "evaluate", "plot", "print_summary"]

#: The chip the network is planned for: the reference chip's two 64-row cores cannot hold its three layers.
DEFAULT_CONFIG = "neurram-like"
PLOT = "cnn.png"
OUTPUTS = ("report.json", PLOT)
#: Issue 20's accuracy target for the chip model after a day of relaxation.
TARGET = 0.985


def check_fits(settings, config: ChipConfig) -> str | None:
    """None if the network of `settings` has cores on `config`, else why not (one line), before any training."""
    from .host.cnn_chip import check_fits as fits
    from .host.compiler import CompileError
    from .models.recipes import LEVELS
    if not config.mvm:
        return f"the {config.name} chip has no MVM sequencer (the CNN runs on MVMs); use {DEFAULT_CONFIG}"
    try:
        fits(settings, config, LEVELS)
    except (CompileError, ValueError) as error:
        return f"the CNN does not fit the {config.name} chip: {error}"
    return None


#: The held-out digits are scored in this many parts, one process each (a part per core of a two-core
#: machine): the chip model computes every MVM sample by sample, ~0.45 s of one core per digit and pass.
PARTS = 2


def evaluate(data, settings, config: ChipConfig, seed: int, digits: int | None = None, replicate: bool = True,
             age_s: float = 86400.0, stream=None) -> dict:
    """`host.cnn_chip.evaluate` on the held-out digits in `PARTS` parts, one process each, merged into one
    report that also names the relaxation setting and the run's wall time.

    Every part trains the same network (training is deterministic for its seed: the parts check they
    agree) and programs its own `ModelTransport` chip with the same seed: the same cells, relaxed the
    same, the same calibrated offsets; only the neurons' kT/C noise is drawn afresh in each part's chip.
    The parts are fixed, whatever the cores, so a run's figures depend on its seeds only. The first part
    shows its progress and log lines on `stream` (default stdout); float and quantized cover all digits,
    the chip the first `digits` of them (default all)."""
    import multiprocessing
    import os
    stream = stream or sys.stdout
    total = len(data.test_y)
    count = total if digits is None else min(digits, total)
    split = -(-count // PARTS) if count >= PARTS else total
    parts = [(_subset(data, 0, split), min(split, count))]
    if split < total:
        parts.append((_subset(data, split, total), count - min(split, count)))
    started = time.perf_counter()
    jobs = [(part, chip_digits, settings, config, seed, replicate, age_s, k == 0)
            for k, (part, chip_digits) in enumerate(parts)]
    if len(jobs) > 1:
        print(f"scoring in {len(jobs)} processes (held-out digits 1-{split} and {split + 1}-{total}); the bars and "
              f"log lines are the first's", file=stream, flush=True)
    _JOB["stream"] = stream
    try:
        if len(jobs) == 1:
            reports = [_evaluate_part(jobs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
                reports = pool.map(_evaluate_part, jobs)
    finally:
        _JOB.clear()
    report = _merged(reports)
    relaxed = report["results"][-1]
    report["relaxation"] = {"setting": relaxed["setting"], "age_s": relaxed["age_s"],
                            "accuracy": relaxed["accuracy"], "target": TARGET}
    report["parts"] = [{"test_digits": len(part.test_y), "chip_digits": chip_digits} for part, chip_digits in parts]
    report["wall_s"] = time.perf_counter() - started
    return report


#: Where the first part shows its progress, set before the processes fork (they inherit it).
_JOB: dict = {}


def _subset(data, start: int, stop: int):
    from dataclasses import replace
    return replace(data, test_x=data.test_x[start:stop], test_y=data.test_y[start:stop])


def _evaluate_part(job) -> dict:
    from .host.cnn_chip import evaluate as run
    from .models.recipes import LEVELS
    data, digits, settings, config, seed, replicate, age_s, shown = job
    stream = _JOB.get("stream") or sys.stdout
    bars: dict[str, Bar] = {}

    def progress(stage, done, total, value):
        if stage not in bars:
            bars[stage] = Bar(_stage_label(stage, age_s), total, stream=stream)
        bars[stage].update(done, f"{'accuracy' if stage.startswith('chip') else 'loss'} {value:.4f}")

    def log(text):
        print(text, file=stream, flush=True)
    return run(data, settings, config, LEVELS, seed, digits, replicate, age_s,
               log=log if shown else None, progress=progress if shown else None)


def _merged(reports: list[dict]) -> dict:
    """One report of the parts': accuracies over all their digits, confusion matrices added, the longest
    wall times; the network and mapping, the same in every part, once."""
    import numpy as np
    first = reports[0]
    for other in reports[1:]:
        if other["threshold_codes"] != first["threshold_codes"] or other["layers"] != first["layers"]:
            raise RuntimeError("the parts trained different networks: training is not deterministic here")
    rows = []
    for same in zip(*(report["results"] for report in reports)):
        row = dict(same[0])
        scored = [r for r in same if r["digits"]]
        row["digits"] = sum(r["digits"] for r in scored)
        row["accuracy"] = sum(r["accuracy"] * r["digits"] for r in scored) / row["digits"]
        if "confusion" in row:
            row["confusion"] = np.sum([r["confusion"] for r in scored], axis=0).tolist()
        if "wall_s" in row:
            row["wall_s"] = max(r["wall_s"] for r in scored)
        rows.append(row)
    return {**first, "results": rows, "train_s": max(r["train_s"] for r in reports),
            "program_s": max(r["program_s"] for r in reports)}


def _stage_label(stage: str, age_s: float) -> str:
    """`evaluate`'s stage names as a reader says them: "chip, 86400 s" is the chip after a day."""
    if stage == "float":
        return "training: float"
    if stage == "quantization-aware":
        return "training: noise-aware"
    if stage.startswith("chip"):
        return "chip model" if stage == "chip, 0 s" else f"chip after {age_s / 86400:g} day"
    return stage


def print_summary(report: dict, config_name: str, out: pathlib.Path, plot_path: pathlib.Path, stream=None) -> None:
    stream = stream or sys.stdout
    config = CONFIGS[config_name]

    def say(text):
        print(text, file=stream)
    say(f"digits CNN on {config.name} ({config.cores} cores of {config.rows}x{config.columns}); "
        f"{report['mvms_per_digit']} MVMs per digit; threshold codes {report['threshold_codes']}")
    for layer in report["layers"]:
        say(f"  {layer['name']:<8} {layer['matrix'][0]:>3}x{layer['matrix'][1]:<4} (outputs x inputs) x "
            f"{layer['copies']:>2} copies on cores {layer['cores']} ({layer['tiles']} tiles, "
            f"{layer['weight_cells']} weight cells, {layer['balance_cells']} balance cells)")
    say(f"{'setting':<28} {'accuracy':>8} {'digits':>6}")
    for row in report["results"]:
        say(f"{row['setting']:<28} {100 * row['accuracy']:>7.2f}% {row['digits']:>6}")
    relaxed = report["relaxation"]
    say(f"{relaxed['setting']}: {100 * relaxed['accuracy']:.2f}% (target {100 * relaxed['target']:.1f}%)")
    say(f"training {report['train_s']:.0f} s, programming {report['program_s']:.0f} s, "
        f"total {report['wall_s']:.0f} s")
    say(f"report: {out / 'report.json'}; plot: {plot_path}")


def plot(report: dict, folder: pathlib.Path) -> pathlib.Path:
    """cnn.png in `folder`: accuracy per setting beside the target, and the confusion matrix of the last."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    rows = report["results"]
    figure, (bars, matrix) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = [r["setting"] for r in rows]
    values = [100 * r["accuracy"] for r in rows]
    bars.bar(range(len(rows)), values, color=["#777", "#4a7", "#37b", "#b63"][:len(rows)])
    for k, value in enumerate(values):
        bars.text(k, value + 0.1, f"{value:.1f}", ha="center", va="bottom")
    bars.axhline(100 * TARGET, color="k", lw=0.8, ls="--", label=f"target {100 * TARGET:g} %")
    bars.set_xticks(range(len(rows)), [n.replace("chip model ", "chip model\n") for n in names], fontsize=8)
    bars.set_ylim(min(values) - 3, 100.5)
    bars.set_ylabel("held-out accuracy, %")
    bars.set_title(f"digits CNN on '{report['config']}' (chip seed {report['seed']}, neuron noise on)")
    bars.legend(loc="lower left")
    last = rows[-1]
    draw_confusion(matrix, last["confusion"])
    matrix.set_title(f"{last['setting']}: {last['digits']} digits")
    figure.tight_layout()
    out = folder / PLOT
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
