"""RBM digit recovery on the chip's bidirectional MVM (golden model): pixel error reduction and classification.

    rram-cim bench rbm [--out DIR] [--seed N] [--samples N] [--steps N] [--burn-in N] [--hidden N] [--epochs N]
    python bench/rbm.py ...

What it runs is `rram_cim.demo_rbm` (its docstring has the steps; `rram-cim demo --task rbm` runs the
same): an RBM trained noise-aware on the digits, mapped for both MVM directions, programmed, relaxed a day
and calibrated; both corruptions (20 % of the pixels flipped, a quarter occluded) recovered by Gibbs
sampling on the chip model and in float, with the pixel error reduction (NeuRRAM: 70 %) and the label
units' classification.

Writes report.json and rbm_recovery.png (rows: flipped, recovered on the chip, recovered in float;
occluded, recovered on the chip, in float; original) into --out.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from rram_cim import demo_rbm
from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.host import rbm as R

PROG = "rram-cim bench rbm"


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench/rbm", help="folder for report and plot")
    parser.add_argument("--seed", type=whole(0), default=0, help="seed of training, corruption, chip and LFSRs")
    parser.add_argument("--samples", type=whole(1, 361), default=360, help="held-out digits to recover (1-360)")
    parser.add_argument("--steps", type=whole(2), default=50, help="Gibbs steps per recovery")
    parser.add_argument("--burn-in", type=whole(0), default=10, help="steps before the samples are counted")
    parser.add_argument("--hidden", type=whole(1), default=REFERENCE.neurons - 1,
                        help="most hidden units to try; fewer while the trained W does not fit the cores")
    parser.add_argument("--epochs", type=whole(1), default=R.RBMSettings.epochs, help="training epochs")
    args = parser.parse_args(argv)
    if args.burn_in >= args.steps:
        parser.error(f"--burn-in {args.burn_in} leaves no sample of {args.steps} steps")
    run = demo_rbm.Recovery(samples=args.samples, steps=args.steps, burn_in=args.burn_in, hidden=args.hidden,
                            epochs=args.epochs, seed=args.seed)
    report, grid = demo_rbm.evaluate(REFERENCE, run, stream=sys.stderr)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    demo_rbm.print_summary(report, out, demo_rbm.save_grid(out, grid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
