"""The device model against public measurements, experiment by experiment, side by side.

    rram-cim bench device [--out DIR] [--full] [--seed N]
    python bench/device.py ...

Each measured experiment is rerun on the model with the same algorithm, steps, windows, levels and
times, and scored by a figure of merit (data: `rram_cim.models.measured`, derived from RADAR, Levy et
al., IEEE TED 2021, doi 10.1109/TED.2021.3097975, and the RRAM relaxation master model, MIT):

1. Conductance against gate voltage (200 ns gate staircase, V_BL 2 V): median, cell-to-cell and
   cycle-to-cycle spread, default parameters and the RADAR preset.
2. ISPP word-line step sweep (RADAR's "ISPP": gate stepped, bit line fixed at 2 V, 200 ns pulses,
   RESET on overshoot, 2 bits per cell): per step, mean pulses measured and modelled and their ratio
   per level, the Kolmogorov-Smirnov and Wasserstein distances between the pulse-count distributions,
   the tail (p90 / median) and RESETs per cell. Our engine calls this algorithm IGVVA.
3. ISPP, FPPV and RADAR on the same array: measured only (see below why not rerun).
4. Relaxation: slope of the conductance variance per decade of time, per initial conductance.

The default run is short (128 cells per level, 6 steps); --full reruns every step with the measured
512 cells per level.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import numpy as np

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.models import HFO2_1T1R, Algorithm, PVSettings, ReRAMArray, program_and_verify
from rram_cim.models.measured import RADAR_1T1R, load_radar, load_relaxation
from rram_cim.progress import Bar

PROG = "rram-cim bench device"

#: The measured setup in our codes: 10 mV per gate LSB (RADAR's smallest step is one LSB), 10 mV per
#: bit-line LSB (2 V is code 200), 1 uS per ADC LSB (the levels reach 245 uS, beyond the reference's
#: 128 uS full scale) and a 10 MHz clock so a 2-cycle pulse is RADAR's 200 ns (SCK at its f_sys / 4).
RADAR_CONFIG = dataclasses.replace(REFERENCE, name="radar-bench", us_per_adc_lsb=1.0, bl_volts_per_lsb=0.01,
                                   wl_volts_per_lsb=0.01, sys_clk_hz=10e6, spi_clk_hz=2.5e6)
V_BL = 2.0
PULSE_CYCLES = 2
#: Gate start of the ramp, inferred: cells that never overshot needed a median gate swing of 0.28 /
#: 0.39 / 0.53 V at 10 mV steps to reach L2 / L1 / L0 (radar_2bpc.json,
#: "median_gate_swing_v_without_reset"), and the fitted gate law puts those levels at 2.10 / 2.21 /
#: 2.29 V: 1.82, 1.82 and 1.76 V back. The data files do not state the start.
WL_START_V = 1.8
#: A RESET deep enough to bring any level back to HRS (the model's RESET starts at 1 V on the source line).
SL_RESET_V = 2.5
MAX_PULSES = 1000
DEFAULT_STEPS_MV = (10, 20, 30, 50, 100, 150)


# ---- figures of merit ----------------------------------------------------------------------------------
def ks_distance(a, b, a_weights=None, b_weights=None) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs (0 for identical
    samples, 1 for disjoint ones). Weights make a histogram (values, counts) a sample."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a_weights = np.ones(a.size) if a_weights is None else np.asarray(a_weights, float)
    b_weights = np.ones(b.size) if b_weights is None else np.asarray(b_weights, float)
    grid = np.union1d(a, b)

    def cdf(values, weights):
        order = np.argsort(values)
        cumulative = np.cumsum(weights[order]) / weights.sum()
        at = np.searchsorted(values[order], grid, side="right")
        return np.where(at > 0, cumulative[np.maximum(at - 1, 0)], 0.0)

    return float(np.max(np.abs(cdf(a, a_weights) - cdf(b, b_weights))))


def wasserstein(a, b, a_weights=None, b_weights=None) -> float:
    """Earth mover's distance between two pulse-count distributions, in pulses (scipy)."""
    from scipy.stats import wasserstein_distance
    return float(wasserstein_distance(a, b, a_weights, b_weights))


def weighted_quantile(values, weights, q: float) -> float:
    """The q-quantile of a histogram (values, counts): the smallest value whose CDF reaches q."""
    order = np.argsort(values)
    values, cumulative = np.asarray(values, float)[order], np.cumsum(np.asarray(weights, float)[order])
    return float(values[np.searchsorted(cumulative, q * cumulative[-1])])


def variance_slope_per_decade(times_s, variances) -> float:
    """Slope of variance against log10(time), by least squares: uS^2 per decade."""
    return float(np.polyfit(np.log10(times_s), variances, 1)[0])


# ---- 1. gate law ----------------------------------------------------------------------------------------
def gate_staircase(params, cells: int, cycles: int, volts: np.ndarray, seed: int) -> dict:
    """RADAR's gate sweep on the model: per cycle, RESET to HRS, then one 200 ns SET per gate step at
    V_BL = 2 V, each read after. Returns per gate voltage the median and the spreads (as derive.py)."""
    array = ReRAMArray(1, cells, np.random.default_rng(seed), params=params, formed=True)
    everything = np.ones(array.shape, bool)
    g = np.zeros((cycles, len(volts), cells))
    for cycle in range(cycles):
        array.reset_pulse(everything, SL_RESET_V, 3.0)
        for k, v in enumerate(volts):
            array.set_pulse(everything, V_BL, v, (1.0,) * PULSE_CYCLES, 1e-7)
            g[cycle, k] = array.read(0.1)[0]
    out = {}
    for k, v in enumerate(volts):
        at = g[:, k, :]
        out[round(float(v), 2)] = {"median_g_us": float(np.median(at)),
                                   "cell_to_cell_rel": float(at.mean(axis=0).std(ddof=1) / at.mean()),
                                   "cycle_to_cycle_rel": float(np.sqrt(at.var(axis=0, ddof=1).mean()) / at.mean())}
    return out


def bench_gate_law(radar: dict, seed: int) -> dict:
    points = [p for p in radar["gate_sweep"]["points"] if p["v_wl"] <= 2.6]
    volts = np.round(np.arange(0.0, 2.61, 0.05), 2)
    models = {"default": gate_staircase(HFO2_1T1R, 50, 10, volts, seed),
              "RADAR_1T1R": gate_staircase(RADAR_1T1R, 50, 10, volts, seed)}
    print("1. Conductance after a 200 ns gate staircase at V_BL 2 V (50 cells x 10 cycles): median uS, "
          "cell-to-cell / cycle-to-cycle spread %")
    print(f"   {'V_G':>5} {'measured':>22} {'default model':>22} {'RADAR_1T1R':>22}")
    for p in points:
        if round(p["v_wl"] * 100) % 10:
            continue
        cells = [f"{p['median_g_us']:6.1f} {100 * p['cell_to_cell_rel']:5.1f} {100 * p['cycle_to_cycle_rel']:5.1f}"]
        for model in models.values():
            m = model[p["v_wl"]]
            cells.append(f"{m['median_g_us']:6.1f} {100 * m['cell_to_cell_rel']:5.1f} {100 * m['cycle_to_cycle_rel']:5.1f}")
        print(f"   {p['v_wl']:>5.2f} " + " ".join(f"{c:>22}" for c in cells))
    rms = {name: float(np.sqrt(np.mean([(model[p["v_wl"]]["median_g_us"] - p["median_g_us"]) ** 2
                                         for p in points if p["v_wl"] >= 1.95]))) for name, model in models.items()}
    print("   figure of merit, RMS of the medians 1.95-2.6 V: " +
          ", ".join(f"{name} {value:.1f} uS" for name, value in rms.items()))
    return {"measured": points, "models": models, "rms": rms}


# ---- 2. ISPP word-line step sweep -----------------------------------------------------------------------
def level_windows(sweep_entry: dict) -> list[tuple[int, int]]:
    """Each measured level's resistance window as ADC codes (lowest, highest) of RADAR_CONFIG."""
    top = (1 << RADAR_CONFIG.adc_bits) - 1
    windows = []
    for level in sweep_entry["levels"]:
        g_low = 1e6 / level["r_high_ohm"]
        g_high = 1e6 / level["r_low_ohm"] if level["r_low_ohm"] > 0 else float("inf")
        low = int(np.ceil(g_low / RADAR_CONFIG.us_per_adc_lsb))
        high = top if g_high / RADAR_CONFIG.us_per_adc_lsb >= top else int(np.floor(g_high / RADAR_CONFIG.us_per_adc_lsb))
        windows.append((low, high))
    return windows


def ispp_recipes(windows, step_mv: int) -> tuple[np.ndarray, dict[int, PVSettings]]:
    """Targets (one code per level) and per-level recipes: RADAR's ISPP in our engine's terms."""
    targets, recipes = [], {}
    volt = RADAR_CONFIG.wl_volts_per_lsb
    for low, high in windows:
        target, window = (low + high) // 2, (high - low) // 2
        targets.append(target)
        recipes[target] = PVSettings(
            algorithm=Algorithm.IGVVA, bl_start=round(V_BL / RADAR_CONFIG.bl_volts_per_lsb), bl_stop=255,
            wl_start=round(WL_START_V / volt), wl_step=round(step_mv / 1000 / volt), wl_stop=255,
            sl_reset=round(SL_RESET_V / RADAR_CONFIG.sl_volts_per_lsb), pulse_width=PULSE_CYCLES,
            max_pulses=MAX_PULSES, window=window, reset_on_overshoot=True)
    return np.array(targets), recipes


def run_ispp(params, entry: dict, cells_per_level: int, seed: int) -> list[dict]:
    """One step of the sweep on the model: per level, the pulse counts and RESETs of each cell."""
    windows = level_windows(entry)
    codes, recipes = ispp_recipes(windows, entry["wl_step_mv"])
    targets = np.repeat(codes, cells_per_level)[None, :]
    array = ReRAMArray(1, targets.size, np.random.default_rng(seed), params=params, formed=True)
    result = program_and_verify(array, targets, recipes, RADAR_CONFIG)
    return [{"pulses": result.pulses[0, targets[0] == code], "resets": array.reset_pulses[0, targets[0] == code],
             "passed": result.passed[0, targets[0] == code]} for code in codes]


def compare_step(entry: dict, model: list[dict]) -> dict:
    measured_levels = [lvl["pulse_counts"] for lvl in entry["levels"]]
    m_values = np.concatenate([np.asarray(h["pulses"]) for h in measured_levels])
    m_counts = np.concatenate([np.asarray(h["cells"]) for h in measured_levels])
    s_values = np.concatenate([level["pulses"] for level in model])
    s_mean = float(s_values.mean())
    row = {"step_mv": entry["wl_step_mv"], "measured_mean": entry["mean_pulses"], "model_mean": s_mean,
           "ratio": s_mean / entry["mean_pulses"],
           "level_ratio": [float(level["pulses"].mean()) / lvl["mean_pulses"] for level, lvl in zip(model, entry["levels"])],
           "ks": ks_distance(m_values, s_values, m_counts), "w1": wasserstein(m_values, s_values, m_counts),
           "tail_measured": weighted_quantile(m_values, m_counts, 0.9) / max(weighted_quantile(m_values, m_counts, 0.5), 1),
           "tail_model": float(np.percentile(s_values, 90) / max(np.median(s_values), 1)),
           "resets_measured": entry["mean_resets"],
           "resets_model": float(np.concatenate([level["resets"] for level in model]).mean()),
           "failed_model": 1 - float(np.concatenate([level["passed"] for level in model]).mean()),
           "measured_hist": (m_values, m_counts), "model_sample": s_values}
    return row


def bench_ispp(radar: dict, full: bool, seed: int) -> list[dict]:
    sweep = [entry for entry in radar["ispp_wl_step_sweep"] if full or entry["wl_step_mv"] in DEFAULT_STEPS_MV]
    cells = 512 if full else 128
    print(f"\n2. ISPP word-line step sweep, 2 bits per cell: V_BL {V_BL} V, {PULSE_CYCLES * 100} ns, gate from "
          f"{WL_START_V} V, RESET on overshoot; model RADAR_1T1R, {cells} cells per level (measured 512)")
    print("   (default DeviceParams not rerun: its 150 uS ceiling lies below levels L0 and L1, and its square "
          "law is already past L2 at the 1.8 V start)")
    bar = Bar("ISPP sweep on the model", len(sweep), stream=sys.stderr)
    rows = []
    for entry in sweep:
        rows.append(compare_step(entry, run_ispp(RADAR_1T1R, entry, cells, seed)))
        bar.step(f"{entry['wl_step_mv']} mV")
    print(f"   {'step':>5} {'mean pulses':>19} {'ratio':>6} {'ratio L0/L1/L2':>16} {'KS':>5} {'W1':>6} "
          f"{'p90/median':>11} {'RESETs/cell':>12} {'model':>7}")
    print(f"   {'mV':>5} {'meas':>6} {'model':>6} {'':>5} {'':>6} {'':>16} {'':>5} {'pulses':>6} "
          f"{'meas':>5} {'model':>5} {'meas':>5} {'model':>6} {'failed':>7}")
    for r in rows:
        print(f"   {r['step_mv']:>5} {r['measured_mean']:>6.1f} {r['model_mean']:>6.1f} {'':>5} {r['ratio']:>6.2f} "
              f"{'/'.join(f'{x:.2f}' for x in r['level_ratio']):>16} {r['ks']:>5.2f} {r['w1']:>6.1f} "
              f"{r['tail_measured']:>5.1f} {r['tail_model']:>5.1f} {r['resets_measured']:>5.2f} "
              f"{r['resets_model']:>6.2f} {100 * r['failed_model']:>6.1f}%")
    return rows


# ---- 3. the three algorithms ----------------------------------------------------------------------------
def bench_algorithms(radar: dict):
    print("\n3. ISPP, FPPV and RADAR on the same 2-bit-per-cell array (measured; first file of each, "
          "others in radar_2bpc.json)")
    print(f"   {'algorithm':<9} {'mean pulses':>11} {'median':>7} {'p90':>5} {'RESETs':>7} {'success':>8}  file")
    for name, runs in radar["algorithm_evaluation_2bpc"].items():
        r = runs[0]
        print(f"   {name:<9} {r['mean_pulses']:>11.1f} {r['median_pulses']:>7.0f} {r['p90_pulses']:>5.0f} "
              f"{r['mean_resets']:>7.2f} {100 * r['success']:>7.2f}%  {r['file'].rsplit('/', 1)[-1]}")
    print("   not rerun on the model: RADAR is not in the P&V engine yet; FPPV's per-level gate voltages and "
          "bit-line ramps are not in the data files (only its results), so its recipe cannot be repeated.")


# ---- 4. relaxation --------------------------------------------------------------------------------------
def model_variance_slope(params, g_us: float, times_s, cells: int, seed: int) -> tuple[float, list[float]]:
    """Program `cells` cells to `g_us` with one full SET at the gate the compliance law asks for, let
    them relax through `times_s`, and fit the variance's slope per decade."""
    array = ReRAMArray(1, cells, np.random.default_rng(seed), params=params, formed=True)
    i_c_ua = g_us * params.v_c
    v_wl = params.v_t + np.sqrt(i_c_ua / params.k_ua_per_v2)
    array.set_pulse(np.ones(array.shape, bool), V_BL, v_wl, (1.0,), 1e-6)
    variances, now = [], 0.0
    for t in times_s:
        array.relax(t - now)
        now = t
        variances.append(float(array.g_us.var(ddof=1)))
    return variance_slope_per_decade(times_s, variances), variances


def bench_relaxation(relax: dict, full: bool, seed: int) -> dict:
    print("\n4. Relaxation: variance of conductance per decade of time after programming (uS^2/decade), "
          "model default relaxation (RADAR_1T1R keeps it)")
    print(f"   {'tech':>4} {'g0 uS':>6} {'measured':>9} {'model':>7} {'ratio':>7}")
    out = {}
    for tech, entry in relax["technologies"].items():
        ranges = entry["ranges"] if full else entry["ranges"][::4]
        rows = []
        for r in ranges:
            if r["g_initial_us"] >= HFO2_1T1R.g_max_us or r["g_initial_us"] <= HFO2_1T1R.g_min_us:
                continue
            slope, _ = model_variance_slope(HFO2_1T1R, r["g_initial_us"], entry["times_s"], 500, seed)
            rows.append((r["g_initial_us"], r["var_slope_us2_per_decade"], slope))
            ratio = slope / r["var_slope_us2_per_decade"] if r["var_slope_us2_per_decade"] > 0.05 else float("nan")
            print(f"   {tech:>4} {r['g_initial_us']:>6.1f} {r['var_slope_us2_per_decade']:>9.2f} {slope:>7.2f} {ratio:>7.2f}")
        out[tech] = rows
    return out


# ---- plots ------------------------------------------------------------------------------------------------
def plot(gate: dict, ispp: list[dict], relax: dict, out: pathlib.Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    figure, axis = plt.subplots(figsize=(6, 4))
    v = [p["v_wl"] for p in gate["measured"]]
    axis.plot(v, [p["median_g_us"] for p in gate["measured"]], "ko", label="measured (RADAR, median)")
    for name, model in gate["models"].items():
        axis.plot(v, [model[x]["median_g_us"] for x in v], "-",
                  label=f"model {name} (RMS {gate['rms'][name]:.0f} uS)")
    axis.set_xlabel("gate voltage (V)")
    axis.set_ylabel("conductance (uS)")
    axis.set_title("Conductance after a 200 ns gate staircase, V_BL 2 V", fontsize=10)
    axis.legend(fontsize=8)
    paths.append(_save(figure, out / "device_gate_law.png"))

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    steps = [r["step_mv"] for r in ispp]
    top.plot(steps, [r["measured_mean"] for r in ispp], "ko-", label="measured")
    top.plot(steps, [r["model_mean"] for r in ispp], "s-", label="model RADAR_1T1R")
    top.set_ylabel("mean pulses per cell")
    top.legend(fontsize=8)
    top.set_title("ISPP word-line step sweep, 2 bits per cell", fontsize=10)
    bottom.plot(steps, [r["ratio"] for r in ispp], "o-", label="ratio of means (model / measured)")
    bottom.plot(steps, [r["ks"] for r in ispp], "^-", label="KS distance")
    bottom.axhline(1.0, color="grey", lw=0.5)
    bottom.set_xlabel("word-line step (mV)")
    bottom.legend(fontsize=8)
    paths.append(_save(figure, out / "device_ispp_sweep.png"))

    shown = [r for r in ispp if r["step_mv"] in (10, 50, 150)] or ispp[:3]
    figure, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.5), sharey=True)
    for axis, r in zip(np.atleast_1d(axes), shown):
        values, counts = r["measured_hist"]
        order = np.argsort(values)
        axis.step(values[order], np.cumsum(counts[order]) / counts.sum(), where="post", label="measured")
        sample = np.sort(r["model_sample"])
        axis.step(sample, np.arange(1, sample.size + 1) / sample.size, where="post", label="model")
        axis.set_xscale("log")
        axis.set_title(f"{r['step_mv']} mV: KS {r['ks']:.2f}", fontsize=10)
        axis.set_xlabel("pulses per cell")
    np.atleast_1d(axes)[0].set_ylabel("fraction of cells")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    paths.append(_save(figure, out / "device_ispp_cdf.png"))

    figure, axis = plt.subplots(figsize=(6, 4))
    for tech, rows in relax.items():
        if not rows:
            continue
        g, measured, model = np.array(rows).T
        axis.plot(g, measured, "o-", label=f"measured tech {tech}")
        axis.plot(g, model, "x--", label=f"model at tech {tech}'s levels")
    axis.set_xlabel("initial conductance (uS)")
    axis.set_ylabel("variance slope (uS^2 / decade)")
    axis.set_title("Relaxation: growth of the variance per decade of time", fontsize=10)
    axis.legend(fontsize=8)
    paths.append(_save(figure, out / "device_relaxation.png"))
    print("\nplots: " + ", ".join(str(p) for p in paths))


def _save(figure, path: pathlib.Path) -> pathlib.Path:
    import matplotlib.pyplot as plt
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, default="out/bench", help="folder for the plots")
    parser.add_argument("--full", action="store_true", help="every measured step, 512 cells per level")
    parser.add_argument("--seed", type=whole(0), default=1, help="seed of the model's arrays")
    args = parser.parse_args(argv)
    radar, relax = load_radar(), load_relaxation()
    print(f"measured: {radar['source']['paper']}, doi {radar['source']['doi']}, {radar['source']['repository']} "
          f"@ {radar['source']['commit'][:7]}; relaxation: {relax['source']['repository']} (MIT)\n")
    gate = bench_gate_law(radar, args.seed)
    ispp = bench_ispp(radar, args.full, args.seed)
    bench_algorithms(radar)
    relaxation = bench_relaxation(relax, args.full, args.seed)
    plot(gate, ispp, relaxation, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
