"""Chip-in-the-loop progressive fine-tuning against one-shot programming (issue 20, item 3; docs/finetune.md).

    rram-cim bench finetune [--seeds 1 2 3 ...] [--epochs N] [--passes N] [--out DIR]
    python bench/finetune.py ...

For each seed (data split, training, device and neuron-noise seed, as `rram-cim demo --seed`):
1. train the 64-32-10 spiking network offline, quantization- and noise-aware (`host.training`, the demo's
   settings and recipes);
2. one-shot: program it as trained onto a golden-model chip (`ModelTransport`, default device, neuron
   noise on unless --neuron-noise off) and classify the held-out digits;
3. fine-tuned: on an identically seeded chip, program layer 0, measure its hidden spike counts on the
   training digits through the Chip API, retrain layer 1 on them, program it, classify the held-out digits
   (`host.finetune.finetune`);
4. control: layer 1 retrained the same way on the software model's own hidden rates, programmed one-shot
   on an identically seeded chip: what extra training alone gives.
Prints each seed's accuracies, writes report.json (per seed, mean and spread) and finetune.png into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, seed, whole
from rram_cim.progress import Bar

PROG = "rram-cim bench finetune"
RUNS = ("one_shot", "finetuned", "control")


def one_seed(config, seed_value: int, epochs: int, passes: int, train_epochs: int, neuron_noise: bool = True) -> dict:
    from rram_cim.host.chip import Chip, ModelTransport
    from rram_cim.host.finetune import FinetuneSettings, accuracy, finetune, mean_field_retrain, one_shot
    from rram_cim.host.recipes import HOLDING, level_recipes
    from rram_cim.host.training import TrainSettings, device_spread_us, load_digits, train
    from rram_cim.models.recipes import LEVELS
    started = time.perf_counter()
    data = load_digits(seed_value)
    codes = np.array(LEVELS)
    recipes = level_recipes(config, codes, **HOLDING)        # the demo's recipes
    spread = device_spread_us(config, codes, recipes, seed=seed_value)
    settings = TrainSettings(epochs=train_epochs, seed=seed_value)
    _, network = train(config, data, codes * config.us_per_adc_lsb, settings, spread)

    def chip():
        return Chip(ModelTransport(config, seed_value, neuron_noise=neuron_noise), config)

    def tested(label, on, mapping):
        bar = Bar(f"seed {seed_value}: {label}", len(data.test_y))
        return accuracy(on, mapping, data.test_x, data.test_y, settings.steps, lambda done, total: bar.update(done))

    result = {"seed": seed_value}
    baseline = chip()
    mapping, programs = one_shot(baseline, network, codes, recipes)
    result["one_shot"] = tested("one-shot", baseline, mapping)
    result["pulses_one_shot"] = int(sum(p.pulses_total for p in programs))

    tuned_chip = chip()
    bars = {}

    def measured(phase, done, total):
        bars.setdefault(phase, Bar(f"seed {seed_value}: {phase}", total)).update(done)
    tuned = finetune(tuned_chip, network, data.train_x, data.train_y, codes, recipes, spread,
                     FinetuneSettings(epochs=epochs, passes=passes, seed=seed_value), measured)
    result["finetuned"] = tested("fine-tuned", tuned_chip, tuned.mapping)
    result["pulses_finetuned"] = int(sum(p.pulses_total for p in tuned.programs))
    model_rates = network.rates(data.train_x)[0]
    result["hidden_rate_error"] = float(np.abs(tuned.measured - model_rates).mean())
    result["layer1_cells_changed"] = int(sum((a != b).sum() for a, b in ((tuned.network.plus[1], network.plus[1]),
                                                                           (tuned.network.minus[1], network.minus[1]))))

    control = mean_field_retrain(network, data.train_x, data.train_y, spread,
                                 FinetuneSettings(epochs=epochs, seed=seed_value))
    control_chip = chip()
    control_mapping, _ = one_shot(control_chip, control, codes, recipes)
    result["control"] = tested("control", control_chip, control_mapping)
    result["wall_s"] = time.perf_counter() - started
    return result


def summary(results: list[dict]) -> dict:
    out = {}
    for name in (*RUNS, "gain", "control_gain"):
        values = np.array([r[name] for r in results])
        out[name] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "min": float(values.min()), "max": float(values.max())}
    return out


def plot(results: list[dict], path: pathlib.Path, noise: str = "on") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(8, 4))
    seeds = np.arange(len(results))
    width = 0.27
    labels = {"one_shot": "one-shot", "finetuned": "chip-in-the-loop fine-tuned", "control": "control (model rates)"}
    for k, name in enumerate(RUNS):
        axis.bar(seeds + (k - 1) * width, [100 * r[name] for r in results], width, label=labels[name])
    axis.set_xticks(seeds, [str(r["seed"]) for r in results])
    axis.set_xlabel("seed (split, training, device, neuron noise)")
    axis.set_ylabel("held-out accuracy (%)")
    low = min(min(r[name] for name in RUNS) for r in results)
    axis.set_ylim(100 * low - 3, 101.5)
    axis.legend(loc="upper center", ncol=3, fontsize=8)
    axis.set_title(f"64-32-10 digits MLP on the golden-model chip, device spread on, neuron noise {noise}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    from rram_cim.config import REFERENCE
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=whole(1), default=30, help="retraining epochs of layer 1")
    parser.add_argument("--passes", type=whole(1), default=1, help="measurement passes over the training digits")
    parser.add_argument("--train-epochs", type=whole(1), default=60, help="offline float epochs (demo: 60)")
    parser.add_argument("--neuron-noise", choices=("on", "off"), default="on",
                        help="the chip's neurons with kT/C noise and comparator offsets (default on)")
    parser.add_argument("--out", type=output_folder, default="out/bench/finetune")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = []
    for seed_value in args.seeds:
        result = one_seed(REFERENCE, seed_value, args.epochs, args.passes, args.train_epochs, args.neuron_noise == "on")
        result["gain"] = result["finetuned"] - result["one_shot"]
        result["control_gain"] = result["control"] - result["one_shot"]
        results.append(result)
        print(f"seed {seed_value}: one-shot {result['one_shot']:.4f}, fine-tuned {result['finetuned']:.4f} "
              f"({100 * result['gain']:+.1f} points), control {result['control']:.4f} "
              f"({100 * result['control_gain']:+.1f}); {result['wall_s']:.0f} s", flush=True)
    stats = summary(results)
    print(f"\n{'':<12} {'mean':>7} {'std':>7} {'min':>7} {'max':>7}   ({len(results)} seeds)")
    for name, s in stats.items():
        print(f"{name:<12} {s['mean']:>7.4f} {s['std']:>7.4f} {s['min']:>7.4f} {s['max']:>7.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": {"seeds": args.seeds, "epochs": args.epochs, "passes": args.passes,
                           "train_epochs": args.train_epochs, "chip": REFERENCE.name,
                           "neuron_noise": args.neuron_noise == "on",
                           "device": "HFO2_1T1R (default DeviceParams)", "recipes": "level_recipes(**HOLDING)"},
              "seeds": results, "summary": stats, "wall_s": time.perf_counter() - started,
              "threads": os.environ.get("OMP_NUM_THREADS")}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    plot(results, args.out / "finetune.png", args.neuron_noise)
    print(f"report: {args.out / 'report.json'}, plot: {args.out / 'finetune.png'}; "
          f"total {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
