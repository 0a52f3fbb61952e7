"""MVM on the golden model: error against the ideal W.x and W^T.y, samples and conversion steps, by bits.

    rram-cim bench mvm [--out DIR] [--trials N] [--seed N]
    python bench/mvm.py ...

For each direction and each (input bits, output bits) the bench draws random programmed arrays (cells
spread over 2-110 uS, as programmed levels are) and random signed inputs, runs the MVM golden model
(models/mvm.py) with the neurons' comparator offsets and kT/C noise on, and compares the outputs with
the ideal product in output LSB: y_ideal = W.x * gain * V_read / threshold, with W the array's
differential weights in the direction's own voltage-mode normalisation (`models.mvm.effective_weights`)
and the threshold chosen so that full-scale outputs use the range. The error splits into quantization
(the noise-free model against y_ideal: the floor of the conversion) and analog noise (noisy against
noise-free), before and after each array's neurons are offset-calibrated from data (`Chip.calibrate`,
host/calibration.py: random +-1 MVMs, trims stepped until the comparators are unbiased). Samples and
comparator steps per MVM come from the model; the chip's MVM sequencer (the dataflow issue's next slice)
will add its cycles per step.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.models.macro import AnalogMacro, NeuronCodes
from rram_cim.models.mvm import Direction, MVMModel, effective_weights
from rram_cim.models.neurons import NeuronParams
from rram_cim.progress import Bar

PROG = "rram-cim bench mvm"
V_READ = 6
BITS = ((1, 1), (2, 2), (4, 4), (4, 8), (8, 4), (8, 8))
CONVERSIONS = ("count", "sar")


def arrays(seed: int):
    """The same random array twice: a noise-free macro, and a chip on the model with noisy neurons
    (comparator offsets and kT/C noise)."""
    g = np.random.default_rng(seed).uniform(2.0, 110.0, (REFERENCE.rows, REFERENCE.columns))
    clean = AnalogMacro(REFERENCE, seed)
    clean.cores[0].g_us[:] = g
    transport = ModelTransport(REFERENCE, seed, neuron_noise=True)
    transport.set_conductances(0, g)
    return clean, Chip(transport, REFERENCE), g


def one_point(direction: str, in_bits: int, out_bits: int, conversion: str, trials: int, seed: int) -> dict:
    gain, volts = NeuronParams().gain, V_READ * REFERENCE.bl_volts_per_lsb
    quantization, noise, calibrated, top = [], [], [], (1 << out_bits) - 1
    samples = steps = 0
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        clean, chip, g = arrays(seed * 1000 + trial)
        weights = effective_weights(g, Direction[direction.upper()], REFERENCE.neurons)
        count = REFERENCE.rows if direction == "forward" else REFERENCE.neurons
        x = rng.integers(-((1 << in_bits) - 1), 1 << in_bits, count)
        charge = gain * volts * (x @ weights)
        # Full scale: the 90th percentile of |charge| at the top output code.
        threshold = max(1, int(np.percentile(np.abs(charge), 90) / REFERENCE.threshold_volts_per_lsb / top))
        codes = NeuronCodes(thresh_pos=threshold, thresh_neg=threshold)
        ideal = np.clip(charge / (threshold * REFERENCE.threshold_volts_per_lsb), -top, top)
        exact = MVMModel(clean, codes, V_READ).run(0, x, direction, in_bits, out_bits, conversion)
        request = dict(direction=direction, in_bits=in_bits, out_bits=out_bits, conversion=conversion,
                       threshold_code=threshold, v_read_code=V_READ)
        rough = chip.mvm(0, x, **request)
        chip.calibrate(0, seed=trial)
        trimmed = chip.mvm(0, x, **request)
        quantization.append(exact.outputs - ideal)
        noise.append(rough - exact.outputs)
        calibrated.append(trimmed - exact.outputs)
        samples, steps = exact.samples, exact.conversion_steps
    rms = lambda parts: float(np.sqrt(np.mean(np.concatenate(parts) ** 2)))
    return dict(direction=direction, in_bits=in_bits, out_bits=out_bits, conversion=conversion, samples=samples,
                steps=steps, quantization=rms(quantization), noise=rms(noise),
                total=rms([q + n for q, n in zip(quantization, noise)]), noise_calibrated=rms(calibrated),
                total_calibrated=rms([q + n for q, n in zip(quantization, calibrated)]))


def plot(rows: list[dict], out: pathlib.Path) -> pathlib.Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, direction in zip(axes, ("forward", "backward")):
        for conversion, marker in zip(CONVERSIONS, "os"):
            chosen = [r for r in rows if r["direction"] == direction and r["conversion"] == conversion]
            labels = [f"{r['in_bits']}/{r['out_bits']}" for r in chosen]
            axis.plot(labels, [r["total"] for r in chosen], marker=marker, label=f"{conversion}: total")
            axis.plot(labels, [r["total_calibrated"] for r in chosen], marker=marker, linestyle="--",
                      label=f"{conversion}: total, calibrated")
        axis.set_title(f"{direction} MVM, {REFERENCE.name} core")
        axis.set_xlabel("input / output bits")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("RMS error, output LSB")
    axes[0].legend()
    figure.tight_layout()
    path = out / "mvm_error.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench", help="folder for the plot")
    parser.add_argument("--trials", type=whole(1), default=4, help="random arrays and inputs per point")
    parser.add_argument("--seed", type=whole(0), default=1, help="seed of the arrays and inputs")
    args = parser.parse_args(argv)
    points = [(d, i, o, c) for d in ("forward", "backward") for i, o in BITS for c in CONVERSIONS]
    bar = Bar("mvm points", len(points), stream=sys.stderr)
    rows = []
    for done, point in enumerate(points, 1):
        rows.append(one_point(*point, args.trials, args.seed))
        bar.update(done)
    print(f"MVM on the golden model ({REFERENCE.name}: {REFERENCE.rows}x{REFERENCE.columns}, {REFERENCE.neurons} "
          f"neurons; read {V_READ * REFERENCE.bl_volts_per_lsb * 1e3:.0f} mV; neuron noise on; {args.trials} "
          f"arrays per point). RMS error in output LSB against the ideal product.")
    print(f"{'direction':<9} {'bits in/out':>11} {'conversion':>10} {'samples':>7} {'steps':>5} "
          f"{'quantization':>12} {'noise':>6} {'total':>6} {'noise cal.':>10} {'total cal.':>10}")
    for r in rows:
        print(f"{r['direction']:<9} {r['in_bits']:>6}/{r['out_bits']:<4} {r['conversion']:>10} {r['samples']:>7} "
              f"{r['steps']:>5} {r['quantization']:>12.3f} {r['noise']:>6.3f} {r['total']:>6.3f} "
              f"{r['noise_calibrated']:>10.3f} {r['total_calibrated']:>10.3f}")
    print(f"plot: {plot(rows, pathlib.Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
