"""MVM by bits and direction: cycles and energy per MVM, and the error against the ideal W.x and W^T.y.

    rram-cim bench mvm [--out DIR] [--trials N] [--seed N] [--bits I/O,...] [--no-cosim] [--simulator S]
    python bench/mvm.py ...

Error. For each direction and each (input bits, output bits) the bench draws random programmed arrays
(cells spread over 2-110 uS, as programmed levels are) and random signed inputs, runs the MVM golden model
(models/mvm.py) with the neurons' comparator offsets and kT/C noise on, and compares the outputs with
the ideal product in output LSB: y_ideal = W.x * gain * V_read / threshold, with W the array's
differential weights in the direction's own voltage-mode normalisation (`models.mvm.effective_weights`)
and the threshold chosen so that full-scale outputs use the range. The error splits into quantization
(the noise-free model against y_ideal: the floor of the conversion) and analog noise (noisy against
noise-free), before and after each array's neurons are offset-calibrated from data (`Chip.calibrate`,
host/calibration.py: random +-1 MVMs, trims stepped until the comparators are unbiased).

Cycles. Measured on the chip's MVM sequencer (rtl/mvm.py) in co-simulation (one Verilator build for the
whole bench; core 0 programmed to random levels through the P&V engine, neuron noise off): one MVM per
point, its `mvm_cycles` counter read back, and its outputs and sample / step counters compared with the
golden model's for the same seed, cells and inputs (the "cosim = model" column). The cycles do not
depend on the inputs or the cells, only on the shape of the MVM; with the co-simulation's port responder
(each neuron strobe acknowledged on its 2nd cycle, sim/port_responder.py) they are exactly

    cycles = 1 + samples * (3 * lines + 2) + 3 * steps + phases * (2 + 2 * neurons)

with `lines` the input lines (rows forward, neurons backward), samples and steps the totals over the
phases (1 forward, ceil(rows / neurons) backward): 3 cycles per input line and sample (fetch two bytes,
drive), 2 per integrate and 3 per convert step handshake, 2 per reset, 2 per output written and 1 to
finish. Measured against it at every point of the default bench: error 0 cycles. `--no-cosim` takes the
cycles from it. The emulated macro on an FPGA answers more slowly (docs/fpga.md), which adds its latency
per handshake.

Energy. `models.energy.mvm_energy` per MVM on the same arrays, inputs and noise-free outputs as the error,
averaged over them: array (V^2 G t reads, line drivers and the read DAC), neuron integration, conversion
(comparator decisions and the thresholds taken off C_int) and digital logic (`EnergyParams.
e_logic_per_event_pj` per synaptic event, the inference breakdown's model assumption; EnergyParams has
no energy per cycle, so the cycles are not priced). "pJ" is the analog total (array, integration,
conversion), "pJ/MAC" that over rows x neurons MACs.

Output: the table on stdout, mvm.csv and mvm.json, mvm_error.png and mvm_cost.png (cycles and energy
against bits) in --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.models.energy import mvm_energy
from rram_cim.models.macro import AnalogMacro, NeuronCodes
from rram_cim.models.mvm import Direction, MVMModel, effective_weights
from rram_cim.models.neurons import NeuronParams
from rram_cim.progress import Bar

PROG = "rram-cim bench mvm"
V_READ = 6
BITS = ((1, 1), (2, 2), (4, 4), (4, 8), (8, 4), (8, 8))
CONVERSIONS = ("count", "sar")
DIRECTIONS = ("forward", "backward")
#: Columns of mvm.csv, in order.
COLUMNS = ("direction", "in_bits", "out_bits", "conversion", "samples", "steps", "cycles", "cycles_formula",
           "cosim_equals_model", "energy_pj", "energy_pj_per_mac", "array_pj", "integration_pj", "conversion_pj",
           "digital_pj", "macs", "quantization", "noise", "total", "noise_calibrated", "total_calibrated")


def phases(direction: str) -> int:
    return 1 if direction == "forward" else -(-REFERENCE.rows // REFERENCE.neurons)


def cycles_formula(direction: str, in_bits: int, out_bits: int, conversion: str) -> int:
    """System cycles of one MVM on the sequencer behind the co-simulation's port responder (module docstring)."""
    lines = REFERENCE.rows if direction == "forward" else REFERENCE.neurons
    n = phases(direction)
    samples = n * ((1 << in_bits) - 1)
    steps = n * (out_bits if conversion == "sar" else (1 << out_bits) - 1)
    return 1 + samples * (3 * lines + 2) + 3 * steps + n * (2 + 2 * REFERENCE.neurons)


def full_scale_threshold(g: np.ndarray, direction: str, x: np.ndarray, out_bits: int) -> tuple[int, np.ndarray]:
    """The threshold code that puts the 90th percentile of |charge| at the top output code, and the charge."""
    gain, volts = NeuronParams().gain, V_READ * REFERENCE.bl_volts_per_lsb
    charge = gain * volts * (x @ effective_weights(g, Direction[direction.upper()], REFERENCE.neurons))
    top = (1 << out_bits) - 1
    return max(1, int(np.percentile(np.abs(charge), 90) / REFERENCE.threshold_volts_per_lsb / top)), charge


def random_inputs(rng: np.random.Generator, direction: str, in_bits: int) -> np.ndarray:
    count = REFERENCE.rows if direction == "forward" else REFERENCE.neurons
    return rng.integers(-((1 << in_bits) - 1), 1 << in_bits, count)


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
    """Error and energy of one (direction, bits, conversion) over `trials` random arrays and inputs."""
    params = NeuronParams()
    quantization, noise, calibrated, top = [], [], [], (1 << out_bits) - 1
    samples = steps = 0
    energies = []
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        clean, chip, g = arrays(seed * 1000 + trial)
        x = random_inputs(rng, direction, in_bits)
        threshold, charge = full_scale_threshold(g, direction, x, out_bits)
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
        energies.append(mvm_energy(g, x, direction, in_bits, out_bits, conversion, REFERENCE.neurons,
                                   V_READ * REFERENCE.bl_volts_per_lsb, threshold * REFERENCE.threshold_volts_per_lsb,
                                   exact.outputs, c_sample_ff=params.c_sample_ff, c_int_ff=params.c_int_ff))
    first = energies[0]
    if (first.macs, samples, steps) != (REFERENCE.rows * REFERENCE.neurons, *expected_counts(direction, in_bits,
                                                                                            out_bits, conversion)):
        raise AssertionError(f"{direction} {in_bits}/{out_bits} {conversion}: the model's {samples} samples and "
                             f"{steps} steps are not what the energy counts")
    mean = lambda pick: float(np.mean([pick(e) for e in energies]))
    rms = lambda parts: float(np.sqrt(np.mean(np.concatenate(parts) ** 2)))
    return dict(direction=direction, in_bits=in_bits, out_bits=out_bits, conversion=conversion, samples=samples,
                steps=steps, energy_pj=mean(lambda e: e.total_pj),
                energy_pj_per_mac=mean(lambda e: e.total_pj) / first.macs,
                array_pj=mean(lambda e: e.array_reads_pj + e.drivers_dacs_pj),
                integration_pj=mean(lambda e: e.neuron_integration_pj),
                conversion_pj=mean(lambda e: e.comparator_fire_pj + e.conversion_pj),
                digital_pj=mean(lambda e: e.logic_pj), macs=first.macs,
                quantization=rms(quantization), noise=rms(noise),
                total=rms([q + n for q, n in zip(quantization, noise)]), noise_calibrated=rms(calibrated),
                total_calibrated=rms([q + n for q, n in zip(quantization, calibrated)]))


def expected_counts(direction: str, in_bits: int, out_bits: int, conversion: str) -> tuple[int, int]:
    n = phases(direction)
    return n * ((1 << in_bits) - 1), n * (out_bits if conversion == "sar" else (1 << out_bits) - 1)


def cosimulate(points, seed: int, simulator: str, log) -> dict:
    """One MVM per point on the co-simulated chip (core 0 programmed to random levels, neuron noise off) and
    on the golden model of the same seed: {point: (cycles, outputs and counters equal)}."""
    from rram_cim.models.recipes import LEVELS
    from rram_cim.sim.cosim_link import CosimTransport
    reference = ModelTransport(REFERENCE, seed)
    model, g = Chip(reference, REFERENCE), reference.macro.cores[0].g_us
    # Formed cells are all alike, so every differential weight would be 0: program core 0 to random levels
    # through the P&V engine first (the same pulses on both, the same seed), ~45 s of co-simulation.
    targets = np.random.default_rng([seed, REFERENCE.rows]).choice(LEVELS, size=(REFERENCE.rows, REFERENCE.columns))
    measured, largest = {}, 0
    with CosimTransport(simulator, config=REFERENCE, seed=seed, log=log) as transport:
        chip = Chip(transport, REFERENCE)
        log(f"co-simulation: programming core 0 ({REFERENCE.rows}x{REFERENCE.columns} cells to random levels)...")
        programmed = chip.program(0, targets).codes
        if not np.array_equal(programmed, model.program(0, targets).codes):
            raise RuntimeError("the co-simulated chip programmed other codes than the model")
        bar = Bar(f"mvm co-simulation ({simulator})", len(points), stream=sys.stderr)
        for done, (direction, in_bits, out_bits, conversion) in enumerate(points, 1):
            rng = np.random.default_rng([seed, in_bits, out_bits, len(direction), len(conversion)])
            x = random_inputs(rng, direction, in_bits)
            threshold = full_scale_threshold(g, direction, x, out_bits)[0]
            request = dict(direction=direction, in_bits=in_bits, out_bits=out_bits, conversion=conversion,
                           threshold_code=threshold, v_read_code=V_READ)
            y, y_model = chip.mvm(0, x, **request), model.mvm(0, x, **request)
            counters, model_counters = chip.mvm_counters(), model.mvm_counters()
            same = np.array_equal(y, y_model) and all(counters[k] == v for k, v in model_counters.items())
            measured[direction, in_bits, out_bits, conversion] = (counters["mvm_cycles"], same)
            largest = max(largest, int(np.abs(y_model).max()))
            bar.update(done)
        errors = chip.errors()
    if errors:
        raise RuntimeError(f"the co-simulated chip reported errors: {errors}")
    if largest < 2:                     # all outputs 0 or +-1 would make "cosim = model" say little
        raise RuntimeError(f"the co-simulated MVMs' outputs reach only |y| = {largest}: a vacuous comparison")
    return measured


def plot(rows: list[dict], out: pathlib.Path) -> pathlib.Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, direction in zip(axes, DIRECTIONS):
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


def plot_cost(rows: list[dict], out: pathlib.Path, measured: bool) -> pathlib.Path:
    """Cycles and analog energy per MVM against bits, both directions and conversions (log scales)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for direction, colour in zip(DIRECTIONS, ("C0", "C1")):
        for conversion, marker, style in zip(CONVERSIONS, "os", ("-", "--")):
            chosen = [r for r in rows if r["direction"] == direction and r["conversion"] == conversion]
            labels = [f"{r['in_bits']}/{r['out_bits']}" for r in chosen]
            for axis, key in zip(axes, ("cycles", "energy_pj")):
                axis.plot(labels, [r[key] for r in chosen], color=colour, marker=marker, linestyle=style,
                          label=f"{direction}, {conversion}")
    axes[0].set_ylabel("system cycles per MVM" + ("" if measured else " (formula)"))
    axes[1].set_ylabel("analog energy per MVM, pJ")
    for axis in axes:
        axis.set_yscale("log")
        axis.set_xlabel("input / output bits")
        axis.grid(alpha=0.3, which="both")
    axes[0].legend()
    figure.suptitle(f"MVM cost, {REFERENCE.name} core ({REFERENCE.rows}x{REFERENCE.columns}, "
                    f"{REFERENCE.rows * REFERENCE.neurons} MACs)")
    figure.tight_layout()
    path = out / "mvm_cost.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def bits_list(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(b) for b in pair.split("/")) for pair in text.split(","))
    except ValueError:
        pairs = ()
    if not pairs or any(len(p) != 2 or not all(1 <= b <= 8 for b in p) for p in pairs):
        raise argparse.ArgumentTypeError(f"needs input/output bit pairs from 1 to 8 like 1/1,4/8, not {text!r}")
    return pairs


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench", help="folder for the table and plots")
    parser.add_argument("--trials", type=whole(1), default=4, help="random arrays and inputs per point")
    parser.add_argument("--seed", type=whole(0), default=1, help="seed of the arrays and inputs")
    parser.add_argument("--bits", type=bits_list, default=BITS,
                        help="input/output bit pairs (default: " + ",".join(f"{i}/{o}" for i, o in BITS) + ")")
    parser.add_argument("--no-cosim", action="store_true",
                        help="no co-simulation: cycles from the formula (module docstring), no cosim = model check")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="simulator of the co-simulation")
    args = parser.parse_args(argv)
    points = [(d, i, o, c) for d in DIRECTIONS for i, o in args.bits for c in CONVERSIONS]
    measured = {} if args.no_cosim else cosimulate(points, args.seed, args.simulator,
                                                   log=lambda text: print(text, file=sys.stderr))
    bar = Bar("mvm points", len(points), stream=sys.stderr)
    rows = []
    for done, point in enumerate(points, 1):
        row = one_point(*point, args.trials, args.seed)
        formula = cycles_formula(*point)
        cycles, same = measured.get(point, (formula, None))
        rows.append({**row, "cycles": cycles, "cycles_formula": formula, "cosim_equals_model": same})
        bar.update(done)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = (f"cycles measured in co-simulation ({args.simulator}); formula error "
              f"{max(abs(r['cycles'] - r['cycles_formula']) for r in rows)} cycles at most"
              if measured else "cycles from the formula (--no-cosim)")
    print(f"MVM ({REFERENCE.name}: {REFERENCE.rows}x{REFERENCE.columns}, {REFERENCE.neurons} neurons; read "
          f"{V_READ * REFERENCE.bl_volts_per_lsb * 1e3:.0f} mV; neuron noise on; {args.trials} arrays per point). "
          f"{source}. Energy per MVM, pJ: analog total (array + integration + conversion) and per MAC; "
          f"digital logic apart. RMS error in output LSB against the ideal product.")
    print(f"{'direction':<9} {'bits in/out':>11} {'conversion':>10} {'samples':>7} {'steps':>5} {'cycles':>7} "
          f"{'cosim=model':>11} {'pJ':>8} {'pJ/MAC':>7} {'array':>7} {'integr.':>7} {'conv.':>7} {'digital':>9} "
          f"{'quantization':>12} {'noise':>6} {'total':>6} {'noise cal.':>10} {'total cal.':>10}")
    for r in rows:
        same = {None: "-", True: "yes", False: "NO"}[r["cosim_equals_model"]]
        print(f"{r['direction']:<9} {r['in_bits']:>6}/{r['out_bits']:<4} {r['conversion']:>10} {r['samples']:>7} "
              f"{r['steps']:>5} {r['cycles']:>7} {same:>11} {r['energy_pj']:>8.1f} {r['energy_pj_per_mac']:>7.3f} "
              f"{r['array_pj']:>7.1f} {r['integration_pj']:>7.1f} {r['conversion_pj']:>7.1f} {r['digital_pj']:>9.0f} "
              f"{r['quantization']:>12.3f} {r['noise']:>6.3f} {r['total']:>6.3f} "
              f"{r['noise_calibrated']:>10.3f} {r['total_calibrated']:>10.3f}")
    with open(out / "mvm.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "mvm.json").write_text(json.dumps({"config": REFERENCE.name, "seed": args.seed, "trials": args.trials,
                                              "v_read_code": V_READ, "cycles": source, "points": rows}, indent=1))
    print(f"table: {out / 'mvm.csv'}, {out / 'mvm.json'}")
    print(f"plots: {plot(rows, out)}, {plot_cost(rows, out, bool(measured))}")
    failed = [r for r in rows if r["cosim_equals_model"] is False]
    if failed:
        print(f"co-simulation differs from the model at {len(failed)} points", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
