"""A sweep's results read back: yield, its figures and plots (matplotlib, Agg).

Yield is the share of chips that meet the spec (test accuracy at least `spec_accuracy`), with its 95 %
Wilson interval (a binomial share of a few hundred chips: the normal interval would leave 0..1 near the
ends). Plots, in the campaign's folder:

* `accuracy.png`: the accuracy distribution across chips, the spec marked;
* `yield.png`: yield against each axis of the design (a random design's continuous axes in bins of equal
  counts);
* `recipe_front.png`: mean pulses per cell against the cell error rate (cells read back outside the spec
  window) of each P&V recipe of the design, its Pareto front joined.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from .sweep_design import RECIPE_AXES, Design, Range, axes

__all__ = ["report", "wilson", "yield_by_axis", "recipe_front", "PLOTS"]

PLOTS = ("accuracy.png", "yield.png", "recipe_front.png")
#: Bins of a continuous axis of a random design.
BINS = 6


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a binomial share."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def yield_by_axis(results: dict, design: Design, spec_accuracy: float) -> dict[str, list[dict]]:
    """For each axis the design varies over more than one value: its values (or bins) with chips, chips
    meeting spec, yield and interval."""
    meets = results["accuracy"] >= spec_accuracy
    table = {}
    for name, values in design.vary.items():
        column = results[name]
        if design.kind == "random" and isinstance(values, Range) and axes()[name].kind is not str:
            edges = np.unique(np.quantile(column.astype(float), np.linspace(0, 1, BINS + 1)))
            which = np.clip(np.searchsorted(edges, column, side="right") - 1, 0, max(len(edges) - 2, 0))
            groups = [(float(column[which == b].mean()), which == b) for b in range(max(len(edges) - 1, 1))]
        else:
            groups = [(value, column == value) for value in np.unique(column)]
        rows = []
        for value, chosen in groups:
            n, good = int(chosen.sum()), int(meets[chosen].sum())
            if n:
                rows.append({"value": value.item() if hasattr(value, "item") else value, "chips": n,
                             "meeting": good, "yield": good / n, "interval": wilson(good, n)})
        if len(rows) > 1:                        # an axis held at one value is a setting, not a variable
            table[name] = rows
    return table


def recipe_front(results: dict, design: Design) -> list[dict]:
    """Each recipe of the design (its recipe axes' values): mean pulses per cell, the cell error rate
    (1 - in-window share), failed cells and accuracy; `front` marks the Pareto-optimal ones."""
    varied = [name for name in RECIPE_AXES if name in design.vary]
    keys = list(zip(*(results[name] for name in varied))) if varied else [()] * len(results["point"])
    recipes = []
    for key in dict.fromkeys(keys):
        chosen = np.array([k == key for k in keys])
        recipes.append({"recipe": {name: axes()[name].kind(k.item() if hasattr(k, "item") else k)
                                   for name, k in zip(varied, key)},
                        "chips": int(chosen.sum()),
                        "pulses_per_cell": float(results["pulses_per_cell"][chosen].mean()),
                        "error_rate": float(1 - results["in_window"][chosen].mean()),
                        "error_rate_own_window": float(1 - results["in_recipe_window"][chosen].mean()),
                        "failed_cells": float(results["failed_cells"][chosen].mean()),
                        "accuracy": float(results["accuracy"][chosen].mean())})
    for r in recipes:
        r["front"] = not any(o is not r and o["pulses_per_cell"] <= r["pulses_per_cell"]
                             and o["error_rate"] <= r["error_rate"]
                             and (o["pulses_per_cell"], o["error_rate"]) != (r["pulses_per_cell"], r["error_rate"])
                             for o in recipes)
    return recipes


def _label(recipe: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in recipe.items()) or "host default (igvva_levels)"


def report(path: pathlib.Path, out: pathlib.Path, design: Design, spec_accuracy: float, run: dict) -> dict:
    """Read the results file, print the figures, write summary.json and the plots; returns the summary."""
    from .sweep import read_results
    results = read_results(path)
    chips = len(results["point"])
    if chips == 0:
        print(f"sweep: no finished point in {path}")
        return {}
    meets = results["accuracy"] >= spec_accuracy
    by_axis = yield_by_axis(results, design, spec_accuracy)
    front = recipe_front(results, design)
    accuracy = results["accuracy"]
    summary = {
        "chips": chips, "spec_accuracy": spec_accuracy, "yield": float(meets.mean()),
        "yield_interval": wilson(int(meets.sum()), chips),
        "accuracy": {"mean": float(accuracy.mean()), "p5": float(np.quantile(accuracy, 0.05)),
                     "min": float(accuracy.min()), "max": float(accuracy.max())},
        **{name: float(results[name].mean()) for name in ("pulses_per_cell", "failed_cells", "in_window",
                                                           "in_window_read", "in_window_aged", "energy_nj",
                                                           "energy_total_nj")},
        "seconds_per_point": float(results["seconds"].mean()),
        "yield_by_axis": by_axis, "recipes": front, "run": run,
        "design": {"kind": design.kind, "chips": design.chips, "points": design.points, "seed": design.seed,
                   "vary": {k: (vars(v) if isinstance(v, Range) else list(v)) for k, v in design.vary.items()}},
    }
    low, high = summary["yield_interval"]
    print(f"yield: {meets.sum()}/{chips} chips at accuracy >= {spec_accuracy:g}: {meets.mean():.3f} "
          f"(95 % {low:.3f}-{high:.3f}); accuracy mean {accuracy.mean():.3f}, 5th percentile "
          f"{summary['accuracy']['p5']:.3f}, min {accuracy.min():.3f}")
    print(f"per chip: {summary['pulses_per_cell']:.2f} pulses per cell, {summary['failed_cells']:.1f} failed cells, "
          f"{summary['in_window']:.4f} in window after P&V ({summary['in_window_read']:.4f} as one read sees it, "
          f"{summary['in_window_aged']:.4f} after relaxing), "
          f"{summary['energy_nj']:.2f} nJ per inference in the array ({summary['energy_total_nj']:.1f} with logic "
          f"and SPI); {summary['seconds_per_point']:.2f} s per point")
    for name, rows in by_axis.items():
        print(f"yield vs {name}: " + "; ".join(f"{_value(r['value'])}: {r['yield']:.2f} ({r['meeting']}/{r['chips']})"
                                               for r in rows))
    for r in front:
        print(f"recipe {_label(r['recipe'])}: {r['pulses_per_cell']:.2f} pulses/cell, error rate "
              f"{r['error_rate']:.4f} ({r['error_rate_own_window']:.4f} against its own windows), "
              f"{r['failed_cells']:.1f} failed cells, accuracy {r['accuracy']:.3f}"
              + (" (front)" if r["front"] else ""))
    _plot(out, results, design, spec_accuracy, summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(f"plots: {', '.join(str(out / name) for name in PLOTS)}; summary: {out / 'summary.json'}")
    return summary


def _value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plot(out: pathlib.Path, results: dict, design: Design, spec_accuracy: float, summary: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    accuracy = results["accuracy"]
    fig, ax = plt.subplots(figsize=(6, 4))
    step = 1 / max(int(results["digits"][0]), 1)
    ax.hist(accuracy, bins=np.arange(accuracy.min() - step / 2, accuracy.max() + step, step), color="#4477aa")
    ax.axvline(spec_accuracy, color="#cc3311", linestyle="--", label=f"spec {spec_accuracy:g}")
    ax.set_xlabel(f"test accuracy ({int(results['digits'][0])} digits)")
    ax.set_ylabel("chips")
    ax.set_title(f"{summary['chips']} chips: yield {summary['yield']:.2f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)

    by_axis = summary["yield_by_axis"]
    fig, panes = plt.subplots(1, max(len(by_axis), 1), figsize=(4.2 * max(len(by_axis), 1), 3.6), squeeze=False)
    for pane, (name, rows) in zip(panes[0], by_axis.items()):
        x = [r["value"] for r in rows]
        y = np.array([r["yield"] for r in rows])
        low = y - np.array([r["interval"][0] for r in rows])
        high = np.array([r["interval"][1] for r in rows]) - y
        numeric = all(isinstance(v, (int, float)) for v in x)
        positions = x if numeric else np.arange(len(x))
        pane.errorbar(positions, y, yerr=[low, high], marker="o", capsize=3, color="#4477aa")
        if not numeric:
            pane.set_xticks(positions, [str(v) for v in x], rotation=20)
        pane.set_ylim(-0.05, 1.05)
        pane.set_xlabel(name)
        pane.set_ylabel(f"yield (accuracy >= {spec_accuracy:g})")
    if not by_axis:
        panes[0][0].bar(["all chips"], [summary["yield"]], color="#4477aa")
        panes[0][0].set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(out / "yield.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    recipes = summary["recipes"]
    for r in recipes:
        ax.scatter(r["error_rate"], r["pulses_per_cell"], color="#cc3311" if r["front"] else "#999999", zorder=3)
        ax.annotate("/".join(map(str, r["recipe"].values())), (r["error_rate"], r["pulses_per_cell"]), fontsize=6,
                    xytext=(3, 2), textcoords="offset points")
    best = sorted((r for r in recipes if r["front"]), key=lambda r: r["error_rate"])
    ax.plot([r["error_rate"] for r in best], [r["pulses_per_cell"] for r in best], color="#cc3311", label="front")
    ax.set_xlabel(f"cell error rate (conductance outside +-{int(results['spec_window'][0])} codes after P&V)")
    ax.set_ylabel("pulses per cell (mean over chips)")
    named = "/".join(recipes[0]["recipe"]) if recipes and recipes[0]["recipe"] else "host default recipe"
    ax.set_title(f"P&V recipes ({named}): pulses vs error rate", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "recipe_front.png", dpi=120)
    plt.close(fig)
