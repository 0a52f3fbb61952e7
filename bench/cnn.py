"""A CNN on scikit-learn's 8x8 digits through the chip's MVM path: training, then accuracy per setting.

    rram-cim bench cnn [--out DIR] [--config neurram-like] [--seed N] [--training-seed N] [--digits N]
                       [--channels 12,24] [--input-shift 2] [--epochs N] [--aware-epochs N] [--age-days D]
    python bench/cnn.py ...

Trains the network of `host.cnn` (float, then quantization- and noise-aware against the chip's plan:
weight noise from the device model's spread after P&V and --age-days of relaxation, the neurons' kT/C
noise at each layer's threshold), maps it onto the cores (`host.cnn_chip`: im2col convolutions, one MVM
per patch, layers copied into the rows they leave idle, segmented across cores where larger than one),
programs a `ModelTransport` chip (default device, neuron noise on, the host's default P&V recipes,
offsets calibrated) and scores the held-out digits: float, quantized, chip model, chip model after
`chip.relax`. Writes report.json (settings, accuracies, confusion matrices, mapping, wall times) and
cnn.png (accuracy per setting and the chip's confusion matrix after relaxation) into --out.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import CONFIGS
from rram_cim.progress import Bar

PROG = "rram-cim bench cnn"


def channel_list(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(part) for part in text.split(","))
    except ValueError:
        channels = ()
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"needs channels as whole numbers of at least 1, e.g. 16,32; not {text!r}")
    return channels


def plot(report: dict, path: pathlib.Path) -> pathlib.Path:
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
    bars.axhline(98.5, color="k", lw=0.8, ls="--", label="target 98.5 %")
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
    out = path / "cnn.png"
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench/cnn", help="folder for report.json and cnn.png")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="neurram-like", help="chip configuration")
    parser.add_argument("--seed", type=whole(0, 2 ** 32), default=1, help="seed of the chip model (device, neurons)")
    parser.add_argument("--training-seed", type=whole(0, 2 ** 32), default=0,
                        help="seed of the data split, the initial weights and the training noise")
    parser.add_argument("--digits", type=whole(1), default=None, help="held-out digits run on the chip (default: all)")
    parser.add_argument("--epochs", type=whole(1), default=None, help="float epochs (default: CNNSettings')")
    parser.add_argument("--aware-epochs", type=whole(0), default=None,
                        help="noise-aware epochs (default: CNNSettings')")
    parser.add_argument("--channels", type=channel_list, default=None,
                        help="output channels of each convolution, e.g. 16,32 (default: CNNSettings')")
    parser.add_argument("--input-shift", type=whole(0, 5), default=None,
                        help="bits hidden outputs are shifted by on the next MVM's inputs (default: CNNSettings')")
    parser.add_argument("--age-days", type=float, default=1.0, help="relaxation before the second chip run, days")
    parser.add_argument("--no-copies", action="store_true", help="one copy of each layer per core (no row replication)")
    args = parser.parse_args(argv)
    from dataclasses import replace

    from rram_cim.host.cnn import CNNSettings
    from rram_cim.host.cnn_chip import evaluate
    from rram_cim.host.compiler import CompileError
    from rram_cim.host.training import load_digits
    from rram_cim.models.recipes import LEVELS
    settings = CNNSettings(seed=args.training_seed)
    settings = replace(settings, **{name: value for name, value in (("epochs", args.epochs),
                                                                     ("aware_epochs", args.aware_epochs),
                                                                     ("channels", args.channels),
                                                                     ("input_shift", args.input_shift))
                                    if value is not None})
    config = CONFIGS[args.config]
    data = load_digits(args.training_seed)
    bars = {}

    def progress(stage, done, total, value):
        if stage not in bars:
            bars[stage] = Bar(stage, total, stream=sys.stderr)
        bars[stage].update(done, f"{'loss' if 'chip' not in stage else 'accuracy'} {value:.4f}")

    started = time.perf_counter()
    try:
        report = evaluate(data, settings, config, LEVELS, args.seed, args.digits, not args.no_copies,
                          args.age_days * 86400, log=lambda text: print(text, file=sys.stderr), progress=progress)
    except CompileError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    report["wall_s"] = time.perf_counter() - started
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"digits CNN on {config.name} ({config.cores} cores of {config.rows}x{config.columns}); "
          f"{report['mvms_per_digit']} MVMs per digit; threshold codes {report['threshold_codes']}")
    for layer in report["layers"]:
        print(f"  {layer['name']:<8} {layer['matrix'][0]:>3}x{layer['matrix'][1]:<4} (outputs x inputs) x "
              f"{layer['copies']:>2} copies on cores {layer['cores']} ({layer['tiles']} tiles, "
              f"{layer['weight_cells']} weight cells, {layer['balance_cells']} balance cells)")
    print(f"{'setting':<28} {'accuracy':>8} {'digits':>6}")
    for row in report["results"]:
        print(f"{row['setting']:<28} {100 * row['accuracy']:>7.2f}% {row['digits']:>6}")
    print(f"training {report['train_s']:.0f} s, programming {report['program_s']:.0f} s, "
          f"total {report['wall_s']:.0f} s")
    print(f"report: {out / 'report.json'}; plot: {plot(report, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
