"""SPIRIT's SLC-group mapping against the differential multilevel mapping on the digits MLP (issue 20,
item 5; docs/slc.md).

    rram-cim bench slc [--groups 1 2 4] [--seeds 1 2 3] [--out DIR]
    python bench/slc.py ...

For each group size g (cells per sign per weight) the MLP is the largest that fits the reference chip's
64x64 cores as SLC groups: 64/g pooled pixels -> 32/g hidden -> 10 classes (`host.slc_mapping`). On that
same network shape and for each seed (data split, training, device, neuron noise):
- multilevel: `host.training.train` with the demo's eight levels, compiled by `host.compiler`, programmed
  with the demo's recipes (`level_recipes(**HOLDING)`);
- SLC, verified: `host.slc_mapping.train_slc` on the measured OFF/ON cells, `compile_slc`, programmed to
  the two levels with the same per-level recipes;
- SLC, binary verify: the same with each window reaching halfway to the other level (`binary_recipes`).
Each is trained (noise-aware), then programmed onto a golden-model chip (`ModelTransport`, default device,
neuron noise on unless --neuron-noise off) and classifies the held-out digits. Pulses per weight come
from programming the mapping's used cells on a fresh device model (`program_pulses`): every cell of the
columns its neurons read, free rows included, over the network's weights (inputs x hidden + hidden x 10).
Writes report.json and slc.png into --out.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, seed, whole
from rram_cim.progress import Bar

PROG = "rram-cim bench slc"
MAPPINGS = ("multilevel", "slc_verified", "slc_binary")
LABELS = {"multilevel": "multilevel pairs (8 levels)", "slc_verified": "SLC groups, verified",
          "slc_binary": "SLC groups, binary verify"}


def run_one(config, group: int, seed_value: int, epochs: int, neuron_noise: bool = True) -> dict:
    from rram_cim.host.chip import Chip, ModelTransport
    from rram_cim.host.compiler import compile_network
    from rram_cim.host.recipes import HOLDING, level_recipes
    from rram_cim.host.slc_mapping import (SLC_CODES, binary_recipes, compile_slc, expand_raster, measure_levels,
                                           pool_digits, program_pulses, train_slc, used_cells)
    from rram_cim.host.training import TrainSettings, device_spread_us, load_digits, rate_code, train
    from rram_cim.models.recipes import LEVELS
    inputs, hidden = config.rows // group, config.neurons // group
    data = pool_digits(load_digits(seed_value), inputs)
    settings = TrainSettings(hidden=hidden, epochs=epochs, seed=seed_value)
    weights = inputs * hidden + hidden * 10
    out = {"group": group, "seed": seed_value, "shape": [inputs, hidden, 10], "weights": weights}

    def evaluate(name, mapping, recipes, expand):
        chip = Chip(ModelTransport(config, seed_value, neuron_noise=neuron_noise), config)
        chip.load(mapping, recipes)
        bar = Bar(f"g={group} seed {seed_value}: {name}", len(data.test_y))
        right = 0
        for i, (x, y) in enumerate(zip(data.test_x, data.test_y)):
            raster = rate_code(x, settings.steps)
            scores, _ = chip.classify(mapping, expand_raster(raster, group) if expand else raster)
            right += int(scores.argmax() == y)
            bar.update(i + 1, f"accuracy so far {right / (i + 1):.3f}")
        pulses = program_pulses(mapping, recipes, seed_value)
        cells = int(sum(u.sum() for u in used_cells(mapping)))
        total = int(sum(p.sum() for p in pulses))
        return {"accuracy": right / len(data.test_y), "pulses_per_weight": total / weights,
                "cells_per_weight": cells / weights, "pulses_per_cell": total / cells, "cells": cells}

    codes = np.array(LEVELS)
    recipes = level_recipes(config, codes, **HOLDING)
    spread = device_spread_us(config, codes, recipes, seed=seed_value)
    _, network = train(config, data, codes * config.us_per_adc_lsb, settings, spread)
    mapping = compile_network(network.layers(), codes, config, settings.threshold_code, settings.v_read_code)
    out["multilevel"] = evaluate("multilevel", mapping, recipes, False)
    out["multilevel"]["model_accuracy"] = float((network.predict(data.test_x) == data.test_y).mean())

    verified = level_recipes(config, SLC_CODES, **HOLDING)
    for name, slc_recipes in (("slc_verified", verified), ("slc_binary", binary_recipes(verified))):
        cell_us, cell_sd = measure_levels(config, SLC_CODES, slc_recipes, seed_value)
        _, groups = train_slc(config, data, group, cell_us, cell_sd, settings)
        out[name] = evaluate(name, compile_slc(groups, group, config), slc_recipes, True)
        out[name]["model_accuracy"] = float((groups.predict(data.test_x) == data.test_y).mean())
        out[name]["off_on_us"] = [float(v) for v in cell_us]
        out[name]["off_on_sd_us"] = [float(v) for v in cell_sd]
    return out


def summary(results: list[dict]) -> dict:
    table = {}
    for group in sorted({r["group"] for r in results}):
        rows = [r for r in results if r["group"] == group]
        table[str(group)] = {"shape": rows[0]["shape"], "seeds": len(rows)}
        for name in MAPPINGS:
            entry = {}
            for key in ("accuracy", "model_accuracy", "pulses_per_weight", "cells_per_weight", "pulses_per_cell"):
                values = np.array([r[name][key] for r in rows])
                entry[key] = {"mean": float(values.mean()),
                              "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
            table[str(group)][name] = entry
    return table


def plot(table: dict, path: pathlib.Path, noise: str = "on") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    groups = list(table)
    x = np.arange(len(groups))
    width = 0.27
    for k, name in enumerate(MAPPINGS):
        for axis, key, scale in ((axes[0], "accuracy", 100), (axes[1], "pulses_per_weight", 1)):
            means = [scale * table[g][name][key]["mean"] for g in groups]
            spreads = [scale * table[g][name][key]["std"] for g in groups]
            axis.bar(x + (k - 1) * width, means, width, yerr=spreads, capsize=3, label=LABELS[name])
    ticks = [f"g={g}\n{'-'.join(map(str, table[g]['shape']))}" for g in groups]
    for axis, label in ((axes[0], "held-out accuracy on the chip (%)"), (axes[1], "P&V pulses per weight")):
        axis.set_xticks(x, ticks)
        axis.set_ylabel(label)
    axes[0].legend(fontsize=8, loc="lower left")
    figure.suptitle(f"SLC groups vs differential multilevel pairs, golden-model chip, neuron noise {noise}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    from rram_cim.config import REFERENCE
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=whole(1, 5), nargs="+", default=[1, 2, 4],
                        help="cells per sign per weight (1, 2 or 4: the MLP shrinks to fit, 64/g-32/g-10)")
    parser.add_argument("--seeds", type=seed, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=whole(1), default=60, help="float training epochs (then half QAT)")
    parser.add_argument("--neuron-noise", choices=("on", "off"), default="on",
                        help="the chip's neurons with kT/C noise and comparator offsets (default on)")
    parser.add_argument("--out", type=output_folder, default="out/bench/slc")
    args = parser.parse_args(argv)
    if any(g == 3 for g in args.groups):
        parser.error("argument --groups: 3 does not divide the 64 rows into whole inputs; use 1, 2 or 4")
    started = time.perf_counter()
    results = []
    for group in args.groups:
        for seed_value in args.seeds:
            t = time.perf_counter()
            result = run_one(REFERENCE, group, seed_value, args.epochs, args.neuron_noise == "on")
            result["wall_s"] = time.perf_counter() - t
            results.append(result)
            print(f"g={group} ({'-'.join(map(str, result['shape']))}) seed {seed_value}: " + "; ".join(
                f"{name} {result[name]['accuracy']:.3f} ({result[name]['pulses_per_weight']:.1f} pulses/weight)"
                for name in MAPPINGS) + f"; {result['wall_s']:.0f} s", flush=True)
    table = summary(results)
    print(f"\n{'group':<6} {'shape':<9} {'mapping':<14} {'chip acc':>14} {'model acc':>10} {'pulses/weight':>14} "
          f"{'cells/weight':>12} {'pulses/cell':>11}")
    for group, entry in table.items():
        for name in MAPPINGS:
            e = entry[name]
            print(f"{group:<6} {'-'.join(map(str, entry['shape'])):<9} {name:<14} "
                  f"{e['accuracy']['mean']:>7.3f}+-{e['accuracy']['std']:.3f} {e['model_accuracy']['mean']:>10.3f} "
                  f"{e['pulses_per_weight']['mean']:>14.2f} {e['cells_per_weight']['mean']:>12.2f} "
                  f"{e['pulses_per_cell']['mean']:>11.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": {"groups": args.groups, "seeds": args.seeds, "epochs": args.epochs, "chip": REFERENCE.name,
                           "neuron_noise": args.neuron_noise == "on",
                           "recipes": "level_recipes(**HOLDING); binary: binary_recipes"},
              "runs": results, "summary": table, "wall_s": time.perf_counter() - started}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    plot(table, args.out / "slc.png", args.neuron_noise)
    print(f"report: {args.out / 'report.json'}, plot: {args.out / 'slc.png'}; total {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
