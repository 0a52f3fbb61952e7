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

from rram_cim import demo_cnn
from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import CONFIGS

PROG = "rram-cim bench cnn"


def channel_list(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(part) for part in text.split(","))
    except ValueError:
        channels = ()
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"needs channels as whole numbers of at least 1, e.g. 16,32; not {text!r}")
    return channels


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench/cnn", help="folder for report.json and cnn.png")
    parser.add_argument("--config", choices=sorted(CONFIGS), default=demo_cnn.DEFAULT_CONFIG, help="chip configuration")
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
    from rram_cim.host.training import load_digits
    settings = CNNSettings(seed=args.training_seed)
    settings = replace(settings, **{name: value for name, value in (("epochs", args.epochs),
                                                                     ("aware_epochs", args.aware_epochs),
                                                                     ("channels", args.channels),
                                                                     ("input_shift", args.input_shift))
                                    if value is not None})
    config = CONFIGS[args.config]
    problem = demo_cnn.check_fits(settings, config)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    report = demo_cnn.evaluate(load_digits(args.training_seed), settings, config, args.seed, args.digits,
                               not args.no_copies, args.age_days * 86400, stream=sys.stderr)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    demo_cnn.print_summary(report, config.name, out, demo_cnn.plot(report, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
