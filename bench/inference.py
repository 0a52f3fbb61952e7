"""Spiking inference: cycles per time step against events and against array size, and inferences in
co-simulation, Icarus vs Verilator.

    rram-cim bench inference [--simulators icarus verilator] [--inferences N] [--out DIR]
    python bench/inference.py ...

1. The sequencer in Amaranth's simulator (the Python macro's neurons on its port): cycles per time step
   as input events grow (no spikes), as spikes grow (fixed events, thresholds lowered), and at fixed
   events for arrays of 32 to 256 rows and columns. The cost follows events and spikes, not the array.
2. The whole chip in co-simulation: a two-layer network across two cores (10 time steps of 24 input
   events each) driven through SPI by the host runner. Simulated time per inference (what the chip
   would take at ChipConfig's clocks, SPI traffic included), inferences per simulated second, and wall
   time per inference and simulated cycles per wall second per simulator, Verilator as a ratio to Icarus.
Plot: out/bench/inference_cycles.png.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.models.macro import NeuronCodes
from rram_cim.protocol import pack_route
from rram_cim.sim.inference_harness import macro_with_weights, run_sequencer
from rram_cim.sim.runner import build, run
from rram_cim.sim.toolchain import SIMULATORS

PROG = "rram-cim bench inference"
#: The cocotb test this bench runs in each simulator (it takes V_READ from this module).
SCENARIO = pathlib.Path(__file__).with_name("_cocotb_inference.py")

V_READ = 6
STEPS = 8
QUIET = NeuronCodes(thresh_pos=65535, thresh_neg=65535)      # no neuron reaches it: no spikes


def cycles_per_step(config, events: int, codes: NeuronCodes, seed=0) -> tuple[float, float]:
    """(cycles per time step, spikes per time step) for `events` random input rows on core 0."""
    rng = np.random.default_rng(seed)
    macro = macro_with_weights(config, seed, rng=rng)
    routing = b"".join(pack_route(True) for _ in range(config.cores * config.neurons * 2))
    host = [[(0, int(r)) for r in rng.choice(config.rows, events, replace=False)] for _ in range(STEPS)]
    _, counters, _ = run_sequencer(macro, routing, codes, host, V_READ)
    return counters["cycles"] / STEPS, counters["spikes"] / STEPS


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulators", nargs="+", choices=SIMULATORS, default=list(SIMULATORS))
    parser.add_argument("--inferences", type=whole(1), default=5)
    parser.add_argument("--out", type=output_folder, default="out/bench")
    args = parser.parse_args(argv)

    print("Cycles per time step vs input events (reference config, 2 cores of 64x64, no spikes, Amaranth simulator)")
    print(f"{'events':>7} {'cycles':>7}")
    events_axis = [0, 4, 8, 16, 32, 64]
    quiet = []
    for events in events_axis:
        quiet.append(cycles_per_step(REFERENCE, events, QUIET)[0])
        print(f"{events:>7} {quiet[-1]:>7.1f}")
    slope = np.polyfit(events_axis, quiet, 1)
    print(f"fit: {slope[0]:.2f} cycles per event + {slope[1]:.1f} per step")

    print("\nCycles per time step vs spikes (8 input events, thresholds from 64 down to 1 code)")
    print(f"{'threshold':>9} {'spikes':>7} {'cycles':>7}")
    fired, lively = [], []
    for threshold in (64, 16, 8, 4, 2, 1):
        cycles, spikes = cycles_per_step(REFERENCE, 8, NeuronCodes(thresh_pos=threshold, thresh_neg=threshold))
        fired.append(spikes)
        lively.append(cycles)
        print(f"{threshold:>9} {spikes:>7.1f} {cycles:>7.1f}")
    per_spike = np.polyfit(fired, lively, 1)
    print(f"fit: {per_spike[0]:.2f} cycles per spike + {per_spike[1]:.1f}")

    print("\nCycles per time step vs array size (16 input events, no spikes)")
    print(f"{'rows x cols':>12} {'cycles':>7}")
    sizes = [32, 64, 128, 256]                  # a spike event holds 8 row bits: 256 rows at most
    by_size = []
    for size in sizes:
        config = REFERENCE.replace(name=f"bench-{size}", rows=size, columns=size, neurons=size // 2)
        by_size.append(cycles_per_step(config, 16, QUIET)[0])
        print(f"{size:>5} x {size:<5} {by_size[-1]:>7.1f}")

    results = {}
    with tempfile.TemporaryDirectory(prefix="rram-cim-infer-") as scratch:
        for simulator in args.simulators:
            print(f"\n[{simulator}] building the chip...", flush=True)
            built = build(simulator, pathlib.Path(scratch), block="chip_cosim")
            out = pathlib.Path(scratch, f"{simulator}.json")
            print(f"[{simulator}] {args.inferences} inferences of the two-layer network...", flush=True)
            tests, failures = run(built, SCENARIO, extra_env={
                "RRAM_CIM_BENCH_OUT": str(out), "RRAM_CIM_BENCH_INFERENCES": str(args.inferences),
                # The same devices on every simulator, so both run the same spikes.
                "RRAM_CIM_SEED": "1"})
            if tests != 1 or failures:
                raise SystemExit(f"{simulator}: the bench run failed (log above)")
            results[simulator] = json.loads(out.read_text())
    print("\nTwo-layer network across two cores, 10 steps x 24 input events, through SPI")
    print(f"{'simulator':<10} {'spikes/inf':>10} {'sim ms/inf':>10} {'inf/s (sim)':>12} {'wall s/inf':>11} "
          f"{'cycles/wall s':>14}")
    for simulator, r in results.items():
        sim, wall = np.mean(r["sim_seconds"]), np.mean(r["wall_seconds"])
        print(f"{simulator:<10} {r['spikes'] / r['inferences']:>10.1f} {sim * 1e3:>10.2f} {1 / sim:>12.1f} "
              f"{wall:>11.2f} {sim * REFERENCE.sys_clk_hz / wall:>14,.0f}")
    if {"icarus", "verilator"} <= set(results):
        ratio = np.mean(results["icarus"]["wall_seconds"]) / np.mean(results["verilator"]["wall_seconds"])
        print(f"Verilator / Icarus wall-clock speed: {ratio:.2f}x")
    plot(events_axis, quiet, fired, lively, sizes, by_size, args.out / "inference_cycles.png")
    return 0


def plot(events_axis, quiet, fired, lively, sizes, by_size, path: pathlib.Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 3.6))
    left.plot(events_axis, quiet, "o-")
    left.set_xlabel("input events per time step (no spikes)")
    left.set_ylabel("cycles per time step")
    middle.plot(fired, lively, "s-", color="tab:orange")
    middle.set_xlabel("spikes per time step (8 input events)")
    right.plot(sizes, by_size, "o-", color="tab:green")
    right.set_xscale("log", base=2)
    right.set_ylim(0, max(by_size) * 1.5)
    right.set_xlabel("rows = columns per core (16 events)")
    for axis in (left, middle, right):
        axis.grid(alpha=0.3)
    figure.suptitle("Inference sequencer: cost follows events and spikes, not array size")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
