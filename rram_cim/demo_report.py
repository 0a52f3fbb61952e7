"""`rram-cim demo`'s report: the figures of a run (report.json), the printed tables and the plots.

The stages in `demo.py` produce the results; this module only presents them.
"""

from __future__ import annotations

import json
import pathlib
import time
from dataclasses import asdict

import numpy as np

from .config import ChipConfig
from .demo import CHIP_RUNS, PLOTS

__all__ = ["build_report", "print_report", "plot", "write_report"]


def build_report(args, config: ChipConfig, trained, compiled, models, cosim: dict | None, samples: int,
                 timings: dict[str, float]) -> dict:
    """What report.json holds: accuracies, P&V statistics, activity and energy, timings."""
    evaluations, meter = models.evaluations, models.meter
    inferences = len(compiled.rasters)
    spi_bits = cosim["spi_bytes_per_inference"] * 8 if cosim else None
    if spi_bits is not None:
        meter.spi(int(spi_bits * inferences))
    report = {
        "config": config.name, "seed": args.seed, "steps": trained.settings.steps, "test_images": inferences,
        "cosim_images": samples if cosim else 0,
        "accuracy": {name: e.accuracy for name, e in evaluations.items()},
        "accuracy_on_cosim_subset": {name: e.on(samples) for name, e in evaluations.items()},
        "programming": [_pv_stats(r, trained.level_codes, config, true) for r, true
                        in zip(_programs(models, cosim), models.programs)],
        "spikes_per_inference": evaluations["chip_model"].spikes,
        "row_events_per_inference": evaluations["chip_model"].row_events,
        "synaptic_events_per_inference": meter.synaptic_events / inferences,
        "energy_pj_per_synaptic_event": meter.per_event(),
        "energy_nj_per_inference": meter.per_inference_nj(inferences),
        "energy_breakdown": meter.breakdown().report(),
        "timings_s": timings,
    }
    if cosim:
        report["cosim"] = {k: v for k, v in cosim.items() if k not in ("programs", "evaluation")}
        key = {"cosim": "chip_rtl_cosim", "fpga-sim": "chip_fpga_sim", "serial": "chip_board"}[args.transport]
        report["accuracy"][key] = report["accuracy_on_cosim_subset"][key] = cosim["evaluation"].accuracy
    return report


def write_report(path: pathlib.Path, report: dict, started: float) -> None:
    report["timings_s"]["total_s"] = time.perf_counter() - started
    path.write_text(json.dumps(report, indent=2, default=_jsonable))


def _programs(models, cosim):
    """The P&V results the report shows: the chip's when it ran, else the golden model's."""
    return cosim["programs"] if cosim else models.programs


def plot(scratch: pathlib.Path, out: pathlib.Path, trained, compiled, models, cosim, config: ChipConfig) -> None:
    """The four plots, into `scratch` (named as they will be in `out`)."""
    chip_model = models.evaluations["chip_model"]
    _plots(scratch, out, chip_model, _programs(models, cosim), trained.level_codes, config, compiled.rasters[0],
           models.first_spikes, compiled.labels[0], chip_model.predictions[0], trained.quantized)


def _pv_stats(result, level_codes, config, model) -> dict:
    """`result`'s P&V figures; the true in-window share from the golden model's `model` result of the same
    core (the chip's cells are the model's, pulse for pulse, but a chip cannot show them without noise)."""
    us = config.us_per_adc_lsb
    error = (result.codes - result.targets) * us
    return {"core": result.core, "cells": int(result.targets.size), "mean_pulses": float(result.pulses.mean()),
            "max_pulses": int(result.pulses.max()), "failed": result.cells_failed,
            "in_window_on_read_back": float(result.in_window.mean()),
            # The read-back is the chip's own verify read: `verify_reads` senses averaged per cell.
            "in_window": float(result.in_window.mean()), "verify_reads": result.verify_reads,
            "in_window_true": float(model.in_window_true.mean()),
            "window_codes_per_level": [int(result.window[result.targets == c].max()) if np.any(result.targets == c)
                                       else None for c in level_codes],
            "sigma_us_per_level": [float(error[result.targets == c].std()) if np.any(result.targets == c)
                                   else None for c in level_codes]}


def print_report(report, evaluations, cosim) -> None:
    print("\n=== accuracy on the held-out digits ===")
    # The chip's digits, if they are a subset of the test digits (a column of their own); else none.
    n = report["cosim_images"] if report["cosim_images"] and report["cosim_images"] < report["test_images"] else 0
    print(f"{'model':<34} {'all ' + str(report['test_images']):>9} {('first ' + str(n)) if n else '':>10}")
    names = {"float": "float (unrounded levels, ideal)", "quantized": "quantized (8 levels, ideal cells)",
             "chip_model": "chip, golden model (P&V cells)", "relaxed 1 hour": "chip, golden model, 1 hour later",
             "relaxed 1 day": "chip, golden model, 1 day later"}
    for key, label in names.items():
        e = evaluations[key]
        print(f"{label:<34} {e.accuracy:>9.3f} {f'{e.on(n):.3f}' if n else '':>10}")
    if cosim:
        e = cosim["evaluation"]
        if n:
            print(f"{CHIP_RUNS[cosim['transport']]:<34} {'':>9} {e.accuracy:>10.3f}")
        else:
            print(f"{CHIP_RUNS[cosim['transport']]:<34} {e.accuracy:>9.3f}")
        if cosim["identical"] is not None:
            print(f"co-simulation: {cosim['identical']} of {report['cosim_images']} inferences identical, event "
                  "for event, to the golden model")
        else:
            print("(emulated cells and ideal neurons of the FPGA build: no golden model to compare event for event)")
        print(f"{cosim['transport']} ({cosim['simulator'] or 'board'}): {cosim['inference_wall_s']:.2f} s wall and "
              f"{cosim['inference_sim_ms']:.2f} ms chip time per inference, "
              f"{cosim['spi_frames_per_inference']:.0f} frames ({cosim['spi_bytes_per_inference']:.0f} B)")
    print("\n=== program and verify (per-level IGVVA, windows widened with the level) ===")
    for p in report["programming"]:
        print(f"core {p['core']}: {p['cells']} cells, {p['mean_pulses']:.2f} pulses/cell (max {p['max_pulses']}), "
              f"{p['failed']} failed, {100 * p['in_window']:.0f} % in window on read-back "
              f"({p['verify_reads']} reads averaged), {100 * p['in_window_true']:.0f} % truly; windows (codes): "
              + " ".join("-" if w is None else str(w) for w in p["window_codes_per_level"]) + "; "
              "sigma per level (uS): " + " ".join("-" if s is None else f"{s:.2f}" for s in p["sigma_us_per_level"]))
    if cosim:
        build = f", build {cosim['build_s']:.0f} s" if cosim["build_s"] is not None else ""
        print(f"programming ({cosim['transport']}): {cosim['program_sim_s']:.3f} s chip time, "
              f"{cosim['program_wall_s']:.0f} s wall ({cosim['simulator'] or 'board'}{build})")
    print("\n=== activity and energy per inference (golden model) ===")
    e = report["energy_pj_per_synaptic_event"]
    print(f"{report['spikes_per_inference']:.0f} spikes, {report['row_events_per_inference']:.0f} row events, "
          f"{report['synaptic_events_per_inference']:.0f} synaptic events")
    spi = "" if cosim else " (no SPI: model transport only)"
    print(f"energy per synaptic event: array {e['array_pj']:.2f} pJ (SPIRIT {e['spirit_array_pj']} pJ), "
          f"with logic and SPI {e['total_pj']:.1f} pJ{spi} (SPIRIT {e['spirit_total_pj']:.0f} pJ)")
    per = report["energy_nj_per_inference"]
    print(f"energy per inference: array {per['array']:.2f} nJ, total {per['total']:.1f} nJ")
    _print_breakdown(report["energy_breakdown"])


def _print_breakdown(breakdown) -> None:
    """The analog inference energy by kind of operation, per synaptic event and per MAC, then the published
    figures it compares with."""
    event, mac = breakdown["pj_per_synaptic_event"], breakdown["pj_per_mac"]
    print(f"{'energy breakdown':<34} {'pJ/event':>10} {'pJ/MAC':>10}")
    for name, pj in event.items():
        print(f"{name.replace('_', ' '):<34} {pj:>10.3g} {mac[name]:>10.3g}")
    if breakdown["neuron_pj_per_spike"] is not None:
        print(f"neuron (integration, comparators, conversion) per spike: {breakdown['neuron_pj_per_spike']:.3f} pJ")
    for figure in breakdown["published"]:
        print(f"  {figure['chip']}: {figure['pj']:.2f} pJ per {figure['per']} ({figure['includes']}; "
              f"{figure['source']})")


def draw_confusion(axis, matrix) -> None:
    """A confusion matrix (true digit by row) on `axis`, each non-zero count written in its cell."""
    matrix = np.asarray(matrix)
    axis.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            axis.text(j, i, str(value), ha="center", va="center", fontsize=7,
                      color="white" if value > matrix.max() / 2 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true digit")
    axis.set_xticks(range(len(matrix)))
    axis.set_yticks(range(len(matrix)))


def _plots(scratch, out, evaluation, programs, level_codes, config, raster, spikes, label, predicted, network) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    figure, axis = plt.subplots(figsize=(5, 4.4))
    draw_confusion(axis, confusion_matrix(evaluation.labels, evaluation.predictions, labels=range(10)))
    axis.set_title(f"Chip (golden model), accuracy {evaluation.accuracy:.3f}")
    _save(figure, scratch / "confusion.png")

    figure, axis = plt.subplots(figsize=(7, 3.8))
    us = config.us_per_adc_lsb
    codes = np.concatenate([p.codes.ravel() for p in programs]) * us
    targets = np.concatenate([p.targets.ravel() for p in programs]) * us
    bins = np.arange(0, codes.max() + 2 * us, us)
    for level in level_codes * us:
        axis.hist(codes[targets == level], bins=bins, alpha=0.8)
        axis.axvline(level, color="k", lw=0.6, ls="--")
    axis.set_yscale("log")
    axis.set_xlabel("conductance read back (uS); dashed: targets")
    axis.set_ylabel("cells")
    axis.set_title("Conductances after on-chip P&V, both cores")
    _save(figure, scratch / "conductances.png")

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 6), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 2, 1]})
    steps = np.arange(spikes.shape[0])
    t, i = np.nonzero(raster)
    top.scatter(t, i, s=4, marker="|", color="k")
    top.set_ylabel("input row")
    for axis, core, name in ((middle, 0, "hidden neuron"), (bottom, 1, "output neuron")):
        for sign, colour in ((1, "tab:red"), (-1, "tab:blue")):
            t, n = np.nonzero(spikes[:, core] == sign)
            axis.scatter(t, n, s=8, marker="|", color=colour)
        axis.set_ylabel(name)
    bottom.set_ylim(-0.5, 9.5)
    bottom.set_xlabel("time step (red +1 spikes, blue -1)")
    top.set_title(f"One inference: digit {label}, predicted {predicted}")
    top.set_xlim(-0.5, steps[-1] + 0.5)
    _save(figure, scratch / "raster.png")

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for p in programs:
        pulses = np.sort(p.pulses.ravel())
        left.step(pulses, np.arange(1, pulses.size + 1) / pulses.size, where="post",
                  label=f"core {p.core} ({p.cells_failed} failed)")
    left.set_xlabel("pulses applied to the cell")
    left.set_ylabel("share of cells finished")
    left.set_title("On-chip P&V convergence")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(network.history)
    right.set_yscale("log")
    right.set_xlabel("epoch (float, then quantization-aware)")
    right.set_ylabel("training loss")
    right.grid(alpha=0.3)
    _save(figure, scratch / "convergence.png")
    print(f"plots: {', '.join(str(out / n) for n in PLOTS)}")


def _save(figure, path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(figure)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)
