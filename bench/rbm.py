"""RBM digit recovery on the chip's bidirectional MVM (golden model): pixel error reduction and classification.

    rram-cim bench rbm [--out DIR] [--seed N] [--samples N] [--steps N] [--burn-in N] [--hidden N] [--epochs N]
    python bench/rbm.py ...

1. Trains an RBM (64 binarized pixels + 10 one-hot labels) on scikit-learn's digits by contrastive
   divergence, noise-aware: W rounded to the cells' 8 levels and each weight's conductance spread after P&V
   and a day of relaxation (`host.training.device_spread_us`) drawn in every step. Hidden units as the
   cores allow: --hidden (default 31, a core's neurons less the balance pair) and one fewer each time the
   trained W cannot be balanced on the cores (`host.rbm.train_fitting`).
2. Maps W onto the reference chip's two cores for both MVM directions (`host.rbm.map_rbm`), programs them
   through the golden model's P&V (the demo's recipes), lets them relax a day and calibrates every neuron's
   comparator offset (`Chip.calibrate`). The neurons' comparator offsets and kT/C noise are on.
3. Corrupts the held-out digits twice: 20 % of the pixels flipped; one 4x4 quadrant (a quarter) occluded.
   Recovers both by Gibbs sampling: on the chip (forward MVM visible -> hidden, backward MVM hidden ->
   visible on the same cells, the LFSR stochastic neuron deciding in the host) and with the float
   reference (the float W, exact products, the same neuron and LFSR draws).
4. Reports the pixel error reduction against the corrupted input (NeuRRAM: 70 %, Wan et al., Nature 608,
   2022), the label units' classification of the recovered and of the clean digits, and the cost.

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
