"""Speed and quality of the analog models, measured in one run; figures are ratios where a comparison is asked.

    rram-cim bench models [--out DIR] [--repeat N] [--full]
    python bench/models.py ...

1. Crossbar read without IR drop vs a bare numpy matmul, at 64x64, 256x256 and 1024x1024.
2. IR-drop solve vs badcrossbar (same network) at 128x128 (1 and 100 input vectors) and 256x256 (1; with
   --full also 100), BLAS pinned to one thread: badcrossbar's call, our factorization and our solve
   timed separately, their ratios, and the largest relative difference in the currents.
3. Programming a 256x256 array to 8 levels with ISPVA and with IGVVA (per-level recipes, same pulse
   budget): time, pulses per cell, failures, sigma per level; level histograms as a PNG.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time
import warnings

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import READ_DISTURB_LIMIT_V, REFERENCE
from rram_cim.models import (HFO2_1T1R, Algorithm, Crossbar, IRDropSolver, PVSettings, ReRAMArray,
                             program_and_verify)

PROG = "rram-cim bench models"

LEVELS_US = np.array([10, 25, 40, 55, 70, 85, 100, 115.0])
BUDGET = 60


def best_of(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def gate_code(g_us: float) -> int:
    p = HFO2_1T1R
    return int(np.ceil((p.v_t + np.sqrt(g_us * p.v_c / p.k_ua_per_v2)) / REFERENCE.wl_volts_per_lsb))


def recipes() -> dict[str, dict[int, PVSettings]]:
    """Per-level recipes (EMBER-style): ISPVA fixes the gate a little above the level's compliance and
    ramps the top electrode from below the SET threshold; IGVVA fixes the top electrode well above it
    and ramps the gate from 80 % to 130 % of the level's compliance."""
    codes = np.rint(LEVELS_US / REFERENCE.us_per_adc_lsb).astype(int)
    return {
        "ISPVA": {int(c): PVSettings(algorithm=Algorithm.ISPVA, bl_start=70, bl_stop=200, wl_start=gate_code(1.3 * g),
                                     wl_stop=gate_code(1.3 * g), sl_reset=110, max_pulses=BUDGET)
                  for c, g in zip(codes, LEVELS_US)},
        "IGVVA": {int(c): PVSettings(algorithm=Algorithm.IGVVA, bl_start=133, wl_start=gate_code(0.8 * g),
                                     wl_stop=gate_code(1.3 * g), sl_reset=110, max_pulses=BUDGET)
                  for c, g in zip(codes, LEVELS_US)},
    }


def bench_reads(repeat: int):
    print("1. crossbar read (no IR drop, Crossbar.currents) vs bare numpy matmul, 32 input vectors, best of", repeat)
    print(f"   {'size':>10} {'ours ms':>9} {'matmul ms':>10} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for n in (64, 256, 1024):
        g = rng.uniform(1, 100, (n, n))
        v = rng.uniform(0, 0.1, (32, n))
        crossbar = Crossbar(g)
        ours = best_of(lambda: crossbar.currents(v), repeat)
        bare = best_of(lambda: v @ g, repeat)
        print(f"   {f'{n}x{n}':>10} {ours * 1e3:>9.3f} {bare * 1e3:>10.3f} {ours / bare:>6.2f}")


def bench_ir_drop(repeat: int, full: bool):
    """badcrossbar solves its nodal system per call; ours factorizes once per programmed array
    (IRDropSolver) and then solves each vector or batch. Both on one BLAS thread, so that neither
    wins by the machine's core count, and the ratios come from the same run."""
    from threadpoolctl import threadpool_limits
    # badcrossbar puts an "always" filter in front of ours for its missing plotting half (cairo, unused):
    # recording the warnings is what keeps them off the table.
    with warnings.catch_warnings(record=True):
        import badcrossbar
    logging.disable(logging.INFO)
    cases = [(128, 1), (128, 100), (256, 1)] + ([(256, 100)] if full else [])
    print(f"\n2. IR-drop solve vs badcrossbar, 2 ohm segments, BLAS pinned to 1 thread, best of {repeat} "
          f"(solves best of {10 * repeat}){'' if full else '; --full adds 256x256 with 100 vectors'}")
    print("   ratios: badcrossbar's call over our solve (factorize once, solve many) and over factorize + solve "
          "(one shot)")
    print(f"   {'size':>8} {'vectors':>7} {'badcrossbar s':>13} {'factorize s':>11} {'solve ms':>9} "
          f"{'ratio solve':>11} {'ratio one-shot':>14} {'max rel diff':>12}")
    rng = np.random.default_rng(1)
    with threadpool_limits(limits=1, user_api="blas"):
        for n, vectors in cases:
            g = rng.uniform(1, 150, (n, n))
            v = rng.uniform(0, READ_DISTURB_LIMIT_V, (vectors, n))      # reads stay below the disturb limit
            theirs_s = best_of(lambda: badcrossbar.compute(v.T, 1e6 / g, r_i_word_line=2.0, r_i_bit_line=2.0),
                               repeat)
            factorize_s = best_of(lambda: IRDropSolver(g, 2.0, 2.0), repeat)
            solver = IRDropSolver(g, 2.0, 2.0)
            solve_s = best_of(lambda: solver.currents(v), 10 * repeat)
            theirs = badcrossbar.compute(v.T, 1e6 / g, r_i_word_line=2.0, r_i_bit_line=2.0).currents.output * 1e6
            difference = np.max(np.abs(solver.currents(v) - theirs) / np.abs(theirs))
            print(f"   {f'{n}x{n}':>8} {vectors:>7} {theirs_s:>13.3f} {factorize_s:>11.3f} {solve_s * 1e3:>9.3f} "
                  f"{theirs_s / solve_s:>10.0f}x {theirs_s / (factorize_s + solve_s):>13.1f}x {difference:>12.1e}")


def bench_programming(out: pathlib.Path):
    n = 256
    codes = np.rint(LEVELS_US / REFERENCE.us_per_adc_lsb).astype(int)
    targets = codes[np.arange(n * n).reshape(n, n) % len(codes)]
    print(f"\n3. P&V of a {n}x{n} array to {len(codes)} levels, budget {BUDGET} pulses per cell, same device seed")
    print(f"   {'algorithm':<9} {'time s':>7} {'mean pulses':>12} {'max':>4} {'failed %':>9}   sigma per level (uS)")
    results = {}
    for name, recipe in recipes().items():
        array = ReRAMArray(n, n, np.random.default_rng(7), formed=True)
        started = time.perf_counter()
        result = program_and_verify(array, targets, recipe)
        elapsed = time.perf_counter() - started
        sigma = [array.g_us[targets == c].std() for c in codes]
        results[name] = (array.g_us.copy(), result)
        print(f"   {name:<9} {elapsed:>7.2f} {result.pulses.mean():>12.1f} {result.pulses.max():>4d} "
              f"{100 * result.failed.mean():>9.2f}   " + " ".join(f"{s:5.2f}" for s in sigma))
    ratio = np.mean([results["ISPVA"][0][targets == c].std() / results["IGVVA"][0][targets == c].std()
                     for c in codes])
    print(f"   mean sigma ratio ISPVA / IGVVA: {ratio:.1f}x (published: IGVVA gives tighter levels)")
    plot_levels(results, targets, codes, out / "pv_levels.png")


def plot_levels(results, targets, codes, path: pathlib.Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(len(results), 1, figsize=(9, 5), sharex=True)
    bins = np.linspace(0, 140, 281)
    for axis, (name, (g, result)) in zip(axes, results.items()):
        for code in codes:
            axis.hist(g[targets == code], bins=bins, histtype="stepfilled", alpha=0.6)
        axis.set_title(f"{name}: {100 * result.failed.mean():.1f} % failed, "
                       f"{result.pulses.mean():.1f} pulses/cell", fontsize=10)
        axis.set_ylabel("cells")
        axis.set_yscale("log")
    axes[-1].set_xlabel("conductance after P&V (uS)")
    figure.suptitle(f"Multilevel programming of a 256x256 HfO2 1T1R array, {BUDGET}-pulse budget")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    print(f"   level histograms: {path}")


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench", help="folder for the plot")
    parser.add_argument("--repeat", type=whole(1), default=5, help="timed runs of each model")
    parser.add_argument("--full", action="store_true",
                        help="also the IR-drop solve of 100 vectors at 256x256 (badcrossbar takes seconds per call)")
    args = parser.parse_args(argv)
    bench_reads(args.repeat)
    bench_ir_drop(max(1, args.repeat // 2), args.full)
    bench_programming(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
