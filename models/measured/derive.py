"""Reduce the public RADAR and relaxation data sets to the small summaries in this folder.

    python -m rram_cim.models.measured.derive RADAR_GIT_DIR RELAXATION_GIT_DIR

Each argument is a git directory (a clone or a bare mirror) of
akashlevy/RRAM-RADAR-Tuning and akashlevy/RRAM-Relaxation-Master-Model. Files are read with
`git show HEAD:path`; nothing of them is copied, only numbers derived from them (counts, means, quantiles,
fitted slopes) are written, each next to the file it came from. Our own code, written for this project;
run it again to check or extend the summaries.
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import re
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).parent

RADAR_SOURCE = {
    "paper": "A. Levy, M. Scott, W.-C. Chen, et al., \"RADAR: A Fast and Energy-Efficient Programming "
             "Technique for Multiple Bits-per-Cell RRAM Arrays\", IEEE Trans. Electron Devices 68(9), 2021",
    "doi": "10.1109/TED.2021.3097975",
    "repository": "github.com/akashlevy/RRAM-RADAR-Tuning",
    "licence": "none stated: only numbers derived from its data are kept here (facts, with this citation); "
               "no file or code of it is copied",
}
RELAX_SOURCE = {
    "paper": "A. Levy et al., RRAM relaxation master model (data and analysis of three 1T1R technologies, "
             "A/B/C), github.com/akashlevy/RRAM-Relaxation-Master-Model",
    "repository": "github.com/akashlevy/RRAM-Relaxation-Master-Model",
    "licence": "MIT (Copyright (c) 2021 Akash Levy); this is a derived table of variances, not a copy",
}

#: Columns of the P&V result files (tab separated): address, reads, SET pulses, RESET pulses, final
#: resistance (ohm), -, window low and high (ohm), success, attempts, -. Pulses counted as the paper's
#: analysis does: SETs + RESETs - 1 (the first RESET only brings the cell to HRS before tuning).
PV_SETS, PV_RESETS, PV_RF, PV_RLO, PV_RHI, PV_SUCCESS = 2, 3, 4, 6, 7, 8
HRS_WINDOW_OHM = 80000.0          # the fourth level (HRS) is not tuned: left out, as the paper does


def git_text(git_dir: pathlib.Path, path: str) -> str:
    raw = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"], check=True,
                         capture_output=True).stdout
    return (gzip.decompress(raw) if path.endswith(".gz") else raw).decode()


def git_commit(git_dir: pathlib.Path) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def table(git_dir, path) -> np.ndarray:
    return np.loadtxt(io.StringIO(git_text(git_dir, path)), ndmin=2)


def pv_summary(data: np.ndarray, histogram: bool) -> dict:
    tuned = data[data[:, PV_RLO] < HRS_WINDOW_OHM]
    pulses = tuned[:, PV_SETS] + tuned[:, PV_RESETS] - 1
    resets = tuned[:, PV_RESETS] - 1
    out = {"cells": int(len(tuned)), "mean_pulses": round(float(pulses.mean()), 3),
           "median_pulses": float(np.median(pulses)), "p90_pulses": float(np.percentile(pulses, 90)),
           "mean_resets": round(float(resets.mean()), 3),
           "success": round(float(tuned[:, PV_SUCCESS].mean()), 5), "levels": []}
    for low in np.unique(tuned[:, PV_RLO]):
        mine = tuned[:, PV_RLO] == low
        level = {"r_low_ohm": float(low), "r_high_ohm": float(tuned[mine, PV_RHI][0]),
                 "cells": int(mine.sum()), "mean_pulses": round(float(pulses[mine].mean()), 3),
                 "mean_resets": round(float(resets[mine].mean()), 3)}
        if histogram:
            values, counts = np.unique(pulses[mine].astype(int), return_counts=True)
            level["pulse_counts"] = {"pulses": values.tolist(), "cells": counts.tolist()}
        out["levels"].append(level)
    return out


def radar(git_dir: pathlib.Path) -> dict:
    out = {"source": {**RADAR_SOURCE, "commit": git_commit(git_dir)}}
    # 1. ISPP (gate stepped, bit line fixed) at 15 word-line steps, 2 bits per cell, 512 cells per level.
    sweep = []
    for step_mv in range(10, 151, 10):
        path = f"exptdata/ispp/data/2bpc/ispp-wl{step_mv / 1000:.3f}-bl5.00-5.00-sl5.00-5.00-7-24-20.csv"
        data = table(git_dir, path)
        # Gate swing to pass for cells that never overshot (one RESET: the initial one).
        clean = data[(data[:, PV_RESETS] == 1) & (data[:, PV_RLO] < HRS_WINDOW_OHM)]
        swing = {str(int(low)): round(float(np.median(clean[clean[:, PV_RLO] == low, PV_SETS])) * step_mv / 1000, 3)
                 for low in np.unique(clean[:, PV_RLO])}
        sweep.append({"wl_step_mv": step_mv, "file": path, **pv_summary(data, histogram=True),
                      "median_gate_swing_v_without_reset": swing})
    out["ispp_wl_step_sweep"] = sweep
    # 2. The three algorithms on the same 4-word-line array (2 bits per cell).
    evaluations = {}
    for name, folder, files in (
            ("ISPP", "ispp", ("ispp-4wl-eval-chip2-8-9-20.csv", "ispp-4wl-eval-chip2-8k-8-9-20.csv",
                              "ispp-4wl-eval-chip1-8k-8-9-20.csv")),
            ("FPPV", "fppv", ("fppv-4wl-eval-chip1-8-7-20.csv", "fppv-4wl-eval-chip1-8k-8-9-20.csv",
                              "fppv-4wl-eval-chip2-8k-8-9-20.csv")),
            ("RADAR", "sdr", ("sdr-4wl-eval-chip1-8-7-20.csv", "sdr-4wl-eval-chip2-8-9-20.csv",
                              "sdr-4wl-eval-chip1-8k-8-9-20.csv", "sdr-4wl-eval-chip2-8k-8-9-20.csv"))):
        runs = []
        for file in files:
            path = f"exptdata/{folder}/data/2bpc/{file}"
            runs.append({"file": path, **pv_summary(table(git_dir, path), histogram=False)})
        evaluations[name] = runs
    out["algorithm_evaluation_2bpc"] = evaluations
    # 3. Conductance against gate voltage: ISPP-like gate staircase (0-4 V, 50 mV, 200 ns, BL 2 V, no
    # RESET between steps), 50 cells x 10 cycles each.
    path = "exptdata/sweeps/data/set-sweep-wl-noreset-200ns-step-0.05-7-30-20-augment.csv"
    data = table(git_dir, path)            # address, pulse width ns, V_BL, V_WL, R before, R after
    points = []
    for v_wl in np.round(np.arange(1.8, 3.01, 0.05), 2):
        at = data[np.isclose(data[:, 3], v_wl) & np.isclose(data[:, 2], 2.0)]
        if len(at) == 0:
            continue
        g = 1e6 / at[:, 5]
        cells = np.unique(at[:, 0])
        per_cell = [g[at[:, 0] == cell] for cell in cells]
        cell_means = np.array([each.mean() for each in per_cell])
        within = np.sqrt(np.mean([each.var(ddof=1) for each in per_cell if len(each) > 1]))
        points.append({"v_wl": float(v_wl), "readings": int(len(g)), "cells": int(len(cells)),
                       "median_g_us": round(float(np.median(g)), 2), "mean_g_us": round(float(g.mean()), 2),
                       "cell_to_cell_rel": round(float(cell_means.std(ddof=1) / g.mean()), 4),
                       "cycle_to_cycle_rel": round(float(within / g.mean()), 4)})
    out["gate_sweep"] = {"file": path, "v_bl": 2.0, "pulse_ns": 200, "wl_step_v": 0.05, "points": points}
    return out


def relaxation(git_dir: pathlib.Path) -> dict:
    out = {"source": {**RELAX_SOURCE, "commit": git_commit(git_dir)},
           "method": "cells binned by initial conductance (the data set's 'range' column), keeping "
                     "g_initial <= the technology's gmax (data/techX/settings.json); variance of g across "
                     "cells at each nominal time point > 0, fitted as var = slope * log10(t) + c",
           "technologies": {}}
    for tech, path, gmax_us in (("B", "data/techB/relaxdata_10k.min.tsv.gz", 128.0),
                                ("C", "data/techC/relaxdata.min.tsv.gz", 40.0)):
        # columns: address, time s, R ohm, g S, g initial S, range, nominal time point s
        data = table(git_dir, path)
        data = data[data[:, 4] * 1e6 <= gmax_us]
        times = [t for t in np.unique(data[:, 6]) if t > 0]
        ranges = []
        for r in np.unique(data[:, 5]):
            mine = data[:, 5] == r
            var = [float(np.var(data[mine & (data[:, 6] == t), 3] * 1e6, ddof=1)) for t in times]
            slope = float(np.polyfit(np.log10(times), var, 1)[0])
            ranges.append({"range": int(r), "g_initial_us": round(float(data[mine, 4].mean() * 1e6), 2),
                           "cells": int((mine & (data[:, 6] == times[0])).sum()),
                           "var_us2": [round(v, 3) for v in var],
                           "var_slope_us2_per_decade": round(slope, 3)})
        out["technologies"][tech] = {"file": path, "gmax_us": gmax_us, "times_s": times, "ranges": ranges}
    return out


def dumps(value: dict) -> str:
    """JSON one key a line, but each list of numbers on one line (short files, readable diffs)."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    radar_dir, relax_dir = (pathlib.Path(each) for each in argv)
    (HERE / "radar_2bpc.json").write_text(dumps(radar(radar_dir)))
    (HERE / "relaxation.json").write_text(dumps(relaxation(relax_dir)))
    print(f"wrote {HERE / 'radar_2bpc.json'} and {HERE / 'relaxation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
