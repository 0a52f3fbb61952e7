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


def evaluate(data, settings, config: ChipConfig, seed: int, digits: int | None = None, replicate: bool = True,
             age_s: float = 86400.0, stream=None) -> dict:
    """`host.cnn_chip.evaluate` with a progress bar per phase on `stream` (default stdout) and its log lines
    there too; the report also names the relaxation setting and the run's wall time."""
    from .host.cnn_chip import evaluate as run
    from .models.recipes import LEVELS
    stream = stream or sys.stdout
    bars: dict[str, Bar] = {}

    def progress(stage, done, total, value):
        if stage not in bars:
            bars[stage] = Bar(_stage_label(stage, age_s), total, stream=stream)
        bars[stage].update(done, f"{'accuracy' if stage.startswith('chip') else 'loss'} {value:.4f}")

    started = time.perf_counter()
    report = run(data, settings, config, LEVELS, seed, digits, replicate, age_s,
                 log=lambda text: print(text, file=stream, flush=True), progress=progress)
    relaxed = report["results"][-1]
    report["relaxation"] = {"setting": relaxed["setting"], "age_s": relaxed["age_s"],
                            "accuracy": relaxed["accuracy"], "target": TARGET}
    report["wall_s"] = time.perf_counter() - started
    return report


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
    confusion = np.array(last["confusion"])
    matrix.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            matrix.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="w" if count > confusion.max() / 2 else "k")
    matrix.set_xlabel("predicted")
    matrix.set_ylabel("true")
    matrix.set_xticks(range(len(confusion)))
    matrix.set_yticks(range(len(confusion)))
    matrix.set_title(f"{last['setting']}: {last['digits']} digits")
    figure.tight_layout()
    out = folder / PLOT
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
