"""On-chip program-and-verify of a whole 64x64 core in co-simulation, per algorithm, Icarus vs Verilator.

    rram-cim bench pv_cosim [--algorithms ispva igvva igvva_levels] [--simulators icarus verilator] [--out DIR]
    python bench/pv_cosim.py ...

The chip is programmed through SPI by the host's `Programmer` (the same code that drives a board), with
one recipe for all levels (ISPVA, IGVVA) or a recipe per level from the level table (igvva_levels,
EMBER-style: each gate ramp starts just below its level). The engine drives the Python analog macro through the cocotb bridge.
Reported per algorithm and simulator: mean and max pulses per cell, cells failed, the sigma of the final
conductance per level, the programming time in simulated seconds (at ChipConfig's clock) and in
wall-clock seconds, and Verilator's speed as a ratio to Icarus's. Then the link (streamed P&V,
docs/pv_engine.md): frames, bytes the host sent per cell against the information minimum (log2 of the
levels: 3 bits for 8) and against the one-byte-per-cell windows before streaming, cells per simulated
and per wall second, simulated cycles per wall second, and the co-simulation's wall time over the golden
model's (`ModelTransport.program` of the same core). Plot: P&V convergence (share of cells finished vs
pulses applied).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import math
import time

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder
from rram_cim.config import REFERENCE
from rram_cim.models.pv import igvva_level_recipes
from rram_cim.models.recipes import LEVELS, reference_recipe
from rram_cim.sim.runner import build, run
from rram_cim.sim.toolchain import SIMULATORS

PROG = "rram-cim bench pv_cosim"
#: The cocotb test this bench runs in each simulator (it takes the recipes below from this module).
SCENARIO = pathlib.Path(__file__).with_name("_cocotb_pv_cosim.py")

BUDGET = 60
_IGVVA = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, bl_start=133, bl_step=0, bl_stop=133,
              wl_start=90, wl_step=2, wl_stop=170, sl_reset=110, pulse_width=4, max_pulses=BUDGET, window=2)
RECIPES = {
    # ISPVA: the gate fixed above the top level's compliance, the top electrode ramped from below V_set.
    "ispva": dict(_IGVVA, algorithm=0, bl_start=70, bl_step=1, bl_stop=200, wl_start=165, wl_step=0, wl_stop=165),
    # IGVVA: the top electrode fixed well above V_set, the gate ramped through the whole compliance range.
    "igvva": _IGVVA,
    # IGVVA with a recipe per level (the level table): each gate ramp starts just below its level.
    "igvva_levels": _IGVVA,
}


def recipes_for(name: str, config):
    """The recipe (or per-level table) of a RECIPES entry for `config`."""
    base = reference_recipe(RECIPES[name], config)
    return igvva_level_recipes(LEVELS, base, config) if name == "igvva_levels" else base


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--simulators", nargs="+", choices=SIMULATORS, default=list(SIMULATORS))
    parser.add_argument("--out", type=output_folder, default="out/bench")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rram-cim-pv-") as scratch:
        for simulator in args.simulators:
            print(f"[{simulator}] building the chip...", flush=True)
            built = build(simulator, pathlib.Path(scratch), block="chip_cosim")
            for algorithm in args.algorithms:
                print(f"[{simulator}] programming a 64x64 core with {algorithm.upper()}...", flush=True)
                out = pathlib.Path(scratch, f"{simulator}-{algorithm}.json")
                tests, failures = run(built, SCENARIO, extra_env={
                    "RRAM_CIM_BENCH_OUT": str(out), "RRAM_CIM_BENCH_ALGORITHM": algorithm,
                    # The same devices on every simulator, so their pulse counts agree exactly.
                    "RRAM_CIM_SEED": "1"})
                if tests != 1 or failures:
                    raise SystemExit(f"{simulator}/{algorithm}: the bench run failed (log above)")
                results[simulator, algorithm] = json.loads(out.read_text())

    print("\nOn-chip P&V of a 64x64 core, 8 levels (10-115 uS), window +-1 uS, budget 60 pulses")
    header = (f"{'simulator':<10} {'recipe':<13} {'mean p':>7} {'max':>4} {'failed':>7} {'sim s':>7} "
              f"{'wall s':>8}   sigma per level (uS)")
    print(header)
    print("-" * len(header))
    for (simulator, algorithm), r in results.items():
        pulses = np.array(r["pulses"])
        print(f"{simulator:<10} {algorithm:<13} {pulses.mean():>7.1f} {pulses.max():>4d} {r['cells_failed']:>7d} "
              f"{r['sim_seconds']:>7.3f} {r['wall_seconds']:>8.1f}   " + " ".join(f"{s:5.2f}" for s in r["sigma_us"]))
    for algorithm in args.algorithms:
        if ("icarus", algorithm) in results and ("verilator", algorithm) in results:
            ratio = results["icarus", algorithm]["wall_seconds"] / results["verilator", algorithm]["wall_seconds"]
            print(f"Verilator / Icarus wall-clock speed, {algorithm.upper()}: {ratio:.2f}x")
    link_table(results)
    plot(results, args.out / "pv_convergence.png")
    (args.out / "pv_cosim.json").write_text(json.dumps(
        {f"{simulator}/{algorithm}": {k: v for k, v in r.items() if k != "pulses"} for (simulator, algorithm), r in results.items()},
        indent=1))
    return 0


#: Before streamed P&V the host wrote one byte per target into a per-cell window, in frames of 1,024 data
#: bytes after a 4-byte header (command and address): the bits per cell that cost.
BEFORE_BITS_PER_CELL = 8 * (1024 + 4) / 1024


def model_seconds(algorithm: str) -> float:
    """Wall time of the golden model programming the same core with the same recipe (seed 1)."""
    from rram_cim.host.chip import ModelTransport
    targets = np.random.default_rng(1).choice(LEVELS, size=(REFERENCE.rows, REFERENCE.columns))
    start = time.perf_counter()
    ModelTransport(REFERENCE, seed=1).program(0, targets, recipes_for(algorithm, REFERENCE), read_back=False)
    return time.perf_counter() - start


def link_table(results: dict) -> None:
    print("\nThe link while programming (host Programmer, streamed through two 256-cell slots, per-cell pulses "
          "read back):")
    header = (f"{'simulator':<10} {'recipe':<13} {'bits':>4} {'frames':>6} {'bytes sent':>10} {'bits/cell':>9} "
              f"{'x minimum':>9} {'stream x min':>12} {'x before':>8} {'cells/sim s':>11} {'cells/wall s':>12} "
              f"{'cycles/wall s':>13} {'x model':>8}")
    print(header)
    print("-" * len(header))
    minimum = math.log2(len(LEVELS))
    model = {}
    for (simulator, algorithm), r in results.items():
        if algorithm not in model:
            model[algorithm] = model_seconds(algorithm)
        bits = 8 * r["bytes_sent"] / r["cells"]
        # What carries the targets alone: their frames into pv_target and the commits (CTRL writes).
        stream = 8 * (r["sent_to"].get("pv_target", 0) + r["sent_to"].get("ctrl", 0)) / r["cells"]
        print(f"{simulator:<10} {algorithm:<13} {r['target_bits']:>4} {r['frames']:>6} {r['bytes_sent']:>10,} "
              f"{bits:>9.2f} {bits / minimum:>9.2f} {stream / minimum:>12.2f} {bits / BEFORE_BITS_PER_CELL:>8.2f} "
              f"{r['cells'] / r['sim_seconds']:>11,.0f} {r['cells'] / r['wall_seconds']:>12,.0f} "
              f"{r['cycles'] / r['wall_seconds']:>13,.0f} {r['wall_seconds'] / model[algorithm]:>8.0f}")
    print(f"(minimum: {minimum:.0f} bits per cell for {2 ** minimum:.0f} levels; 'stream': the pv_target frames and "
          f"CTRL writes (commits, start) alone; before streaming: one byte per target, {BEFORE_BITS_PER_CELL:.2f} bits "
          f"per cell for the targets alone)")
    for (simulator, algorithm), r in results.items():
        print(f"{simulator}/{algorithm} bytes sent by destination: "
              + ", ".join(f"{name} {count:,}" for name, count in sorted(r["sent_to"].items(), key=lambda kv: -kv[1])))


def plot(results, path: pathlib.Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 4))
    seen = set()
    for (simulator, algorithm), r in results.items():
        if algorithm in seen:
            continue                                  # both simulators give the same pulses
        seen.add(algorithm)
        pulses = np.sort(np.array(r["pulses"]))
        axis.step(pulses, np.arange(1, pulses.size + 1) / pulses.size, where="post",
                  label=f"{algorithm.upper()} ({r['cells_failed']} failed)")
    axis.set_xlabel("pulses applied to the cell")
    axis.set_ylabel("share of cells finished")
    axis.set_title("On-chip P&V convergence, 64x64 core, RTL + analog macro model")
    axis.grid(alpha=0.3)
    axis.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"convergence plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
