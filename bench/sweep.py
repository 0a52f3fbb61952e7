"""`rram-cim sweep`'s engine: points per second on 1 and 2 Dask workers, and what a point costs beyond its
own work.

    rram-cim bench sweep [--points N] [--digits D] [--workers 1 2] [--out DIR]
    python bench/sweep.py ...

One small design (N chips of the reference device, D test digits each) is run in this process without
Dask (the serial reference), then on a LocalCluster of each worker count (processes, one thread each).
Reported per engine: the cluster's start (with each worker's imports), points per second (the network's
training excluded: it is once per campaign), the point's own time (inside `run_point`, mean) and the
per-point overhead: what each point costs a worker beyond its own time (scheduling, shipping the point and
its result, writing the row), `workers x wall / points - own time`. The ratio of 2 to 1 workers is the
speed-up; on a machine of 2 cores shared with other work it stays under 2. The figures go to
`out/bench/sweep.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
import tempfile
import time

from rram_cim.cli import ArgumentParser, output_folder, whole
from rram_cim.config import REFERENCE
from rram_cim.models.recipes import LEVELS
from rram_cim.sweep import RESULTS, ResultsFile, Settings, execute, read_results
from rram_cim.sweep_design import Design

PROG = "rram-cim bench sweep"


def _warm() -> None:
    import rram_cim.host.chip  # noqa: F401
    import rram_cim.sweep  # noqa: F401


def run_engine(design: Design, settings: Settings, workers: int, scratch: pathlib.Path) -> dict:
    points = design.check(REFERENCE, LEVELS)
    results = ResultsFile(scratch / f"workers-{workers}" / RESULTS, design, settings)
    quiet = open(scratch / "progress.log", "a")
    started = time.perf_counter()
    if workers == 0:
        outcome = execute(points, settings, results, workers=0, stream=quiet)
        start_s = 0.0
    else:
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            client.wait_for_workers(workers)
            client.run(_warm)                # imports once per worker: part of the start, not of a point
            start_s = time.perf_counter() - started
            outcome = execute(points, settings, results, client=client, stream=quiet)
    quiet.close()
    if outcome.failed or outcome.ran != len(points):
        raise SystemExit(f"{PROG}: {len(outcome.failed)} points failed on {workers} workers")
    wall = outcome.seconds - outcome.train_s
    own = float(read_results(results.path)["seconds"].mean())
    slots = max(workers, 1)
    return {"workers": workers, "points": len(points), "start_s": start_s, "train_s": outcome.train_s,
            "wall_s": wall, "points_per_s": len(points) / wall, "own_s": own,
            "overhead_s": slots * wall / len(points) - own}


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=whole(2), default=24, help="chips in the design (default 24)")
    parser.add_argument("--digits", type=whole(1, 361), default=20, help="test digits per chip (default 20)")
    parser.add_argument("--workers", type=whole(1, 65), nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--out", type=output_folder, default="out/bench")
    args = parser.parse_args(argv)
    design = Design(chips=args.points, seed=1)
    settings = Settings(digits=args.digits, epochs=20)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rram-cim-bench-sweep-") as scratch:
        for workers in (0, *args.workers):
            print(f"{'serial' if workers == 0 else f'{workers} worker(s)'}: {args.points} points...", flush=True)
            rows.append(run_engine(design, settings, workers, pathlib.Path(scratch)))
    print(f"\n{args.points} chips of the reference device, {args.digits} test digits each "
          f"(network trained once: {rows[0]['train_s']:.1f} s, not counted)")
    print(f"{'engine':<12} {'start s':>8} {'wall s':>8} {'points/s':>9} {'own s':>7} {'overhead s':>11} "
          f"{'overhead':>9}")
    for row in rows:
        name = "serial" if row["workers"] == 0 else f"{row['workers']} worker{'s' * (row['workers'] > 1)}"
        print(f"{name:<12} {row['start_s']:8.2f} {row['wall_s']:8.2f} {row['points_per_s']:9.2f} {row['own_s']:7.3f} "
              f"{row['overhead_s']:11.3f} {row['overhead_s'] / row['own_s']:9.1%}")
    by_workers = {row["workers"]: row for row in rows}
    summary = {"rows": rows}
    if 1 in by_workers and 2 in by_workers:
        ratio = by_workers[2]["points_per_s"] / by_workers[1]["points_per_s"]
        summary["ratio_2_to_1"] = ratio
        print(f"2 workers / 1 worker: {ratio:.2f}x the points per second")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"figures: {out / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
