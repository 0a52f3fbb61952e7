"""`rram-cim sweep` on small designs: the distributed run equals the serial one point for point, a killed
campaign resumes without recomputing a finished point, a point whose worker dies is run again, and a bad
design is refused before any work starts."""

import functools
import os
import pathlib
import signal
import subprocess
import sys
import time

import cloudpickle
import numpy as np
import pytest

from rram_cim.cli import main
from rram_cim.config import REFERENCE
from rram_cim.models.recipes import LEVELS
from rram_cim.sweep import METRICS, RESULTS, RUN_COLUMNS, ResultsFile, Settings, execute, read_results, run_point
from rram_cim.sweep_design import (Design, DesignError, Range, chip_seed, design_from_toml, parse_values,
                                   point_recipes)
from rram_cim.sweep_report import PLOTS, report

#: Few digits, short inferences and a network trained for 2 epochs: a point takes a tenth of a second.
SMALL = Settings(digits=4, steps=8, epochs=2)
DESIGN = Design(kind="grid", vary={"stuck_rate": (0.0, 0.05)}, chips=3, seed=5)


def _rows(path) -> dict[int, tuple]:
    """Each point's row without the columns that say where and how long it ran."""
    columns = read_results(path)
    names = [name for name in columns if name not in RUN_COLUMNS]
    return {int(p): tuple(columns[name][i] for name in names) for i, p in enumerate(columns["point"])}


def _run(tmp, design=DESIGN, **engine):
    points = design.check(REFERENCE, LEVELS)
    results = ResultsFile(tmp / RESULTS, design, SMALL)
    outcome = execute(points, SMALL, results, **engine)
    return outcome, results.path


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: every point of DESIGN run in this process, one after the other."""
    outcome, path = _run(tmp_path_factory.mktemp("serial"), workers=0)
    assert outcome.ran == DESIGN.size and not outcome.failed
    return path


def test_a_two_worker_cluster_equals_the_serial_run_point_for_point(serial, tmp_path):
    outcome, path = _run(tmp_path, workers=2)
    assert outcome.ran == DESIGN.size and not outcome.failed
    assert _rows(path) == _rows(serial)
    assert len(set(read_results(path)["worker"])) == 2 or DESIGN.size < 2   # both workers took points


def test_the_report_writes_the_figures_and_plots(serial, tmp_path, capsys):
    summary = report(serial, tmp_path, DESIGN, 0.5, {})
    assert summary["chips"] == DESIGN.size
    assert [row["chips"] for row in summary["yield_by_axis"]["stuck_rate"]] == [3, 3]
    assert len(summary["recipes"]) == 1 and summary["recipes"][0]["front"]
    assert all((tmp_path / name).stat().st_size > 1000 for name in PLOTS)
    assert "yield vs stuck_rate" in capsys.readouterr().out


def _counted(log: pathlib.Path, point, settings, network):
    with open(log, "a") as f:
        f.write(f"{point.index}\n")
    return run_point(point, settings, network)


def test_a_killed_run_resumes_without_recomputing_finished_points(serial, tmp_path):
    # The run was killed after half of the points, in the middle of writing the next row.
    lines = serial.read_text().splitlines(keepends=True)
    half = 1 + DESIGN.size // 2
    kept = {int(line.split(",")[0]) for line in lines[1:half]}
    (tmp_path / RESULTS).write_text("".join(lines[:half]) + lines[half][:20])
    log = tmp_path / "calls"
    outcome, path = _run(tmp_path, workers=0, resume=True, function=functools.partial(_counted, log))
    ran = sorted(int(line) for line in log.read_text().split())
    assert ran == sorted(set(range(DESIGN.size)) - kept)
    assert (outcome.ran, outcome.skipped) == (len(ran), len(kept))
    assert _rows(path) == _rows(serial)
    # The rows written before the kill are untouched (their run times too).
    assert path.read_text().splitlines(keepends=True)[:half] == lines[:half]


def test_a_killed_command_resumes_where_it_stopped(tmp_path):
    argv = [sys.executable, "-m", "rram_cim", "sweep", "--vary", "stuck_rate=0,0.01,0.02,0.03", "--chips", "8",
            "--digits", "3", "--steps", "8", "--epochs", "2", "--workers", "0", "--out", str(tmp_path)]
    results = tmp_path / RESULTS
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and results.read_text().count("\n") > 1 + 8:
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail(f"the campaign ended before it could be killed: {process.stderr.read().decode()}")
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {line.split(",")[0]: line for line in results.read_text().splitlines()[1:] if line.count(",") > 10}
    assert 8 < len(before) < 32
    done = subprocess.run(argv + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{32 - len(before)} points run" in done.stdout and f"{len(before)} already in" in done.stdout
    after = {line.split(",")[0]: line for line in results.read_text().splitlines()[1:]}
    assert sorted(map(int, after)) == list(range(32))
    # Each point finished before the kill keeps its row, run time and worker included: none ran again.
    assert all(after[point] == line for point, line in before.items())


def _dies_once(marker: pathlib.Path, victim: int, point, settings, network):
    """Kill this worker process the first time it starts point `victim` (mid-point, as a crash would)."""
    if point.index == victim and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return run_point(point, settings, network)


def test_a_worker_that_dies_mid_point_has_its_point_retried(serial, tmp_path):
    from distributed import Client, LocalCluster
    # The workers import rram_cim, not the tests: this module's functions travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "died"
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            outcome, path = _run(tmp_path, client=client, function=functools.partial(_dies_once, marker, 2))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists()
    assert outcome.ran == DESIGN.size and not outcome.failed
    assert _rows(path) == _rows(serial)
    assert read_results(path)["worker"][2].split(":")[-1] != marker.read_text()     # it ran again elsewhere


def test_an_existing_scheduler_runs_the_campaign(serial, tmp_path, capsys):
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code = main(["sweep", "--scheduler", cluster.scheduler_address, "--vary", "stuck_rate=0,0.05", "--chips", "3",
                     "--seed", "5", "--digits", "4", "--steps", "8", "--epochs", "2", "--spec-accuracy", "0.5",
                     "--out", str(tmp_path)])
    assert code == 0
    assert f"on Dask scheduler {cluster.scheduler_address}" in capsys.readouterr().out
    assert _rows(tmp_path / RESULTS) == _rows(serial)


# ---- designs ---------------------------------------------------------------------------------------------
def test_seeds_come_from_the_design_not_from_the_order_of_work():
    points = DESIGN.all_points()
    assert [p.index for p in points] == list(range(6))
    assert [p.device_seed for p in points] == [chip_seed(5, c) for c in (0, 1, 2)] * 2   # chip c: same devices
    assert len({p.device_seed for p in points}) == 3
    grown = Design(kind="random", vary={"read_noise_rel": Range(0.01, 0.05)}, points=8, seed=3).all_points()
    first = Design(kind="random", vary={"read_noise_rel": Range(0.01, 0.05)}, points=3, seed=3).all_points()
    assert [p.values for p in grown[:3]] == [p.values for p in first]
    assert all(0.01 <= p["read_noise_rel"] <= 0.05 for p in grown)


def test_a_design_file_reads_as_the_command_line_says_it():
    design = design_from_toml('kind = "random"\npoints = 4\nchips = 2\nseed = 9\n[vary]\n'
                              'stuck_rate = {low = 0.0, high = 0.02}\nalgorithm = ["igvva_levels", "ispva"]\n')
    assert design.vary == {"stuck_rate": parse_values("stuck_rate", "0:0.02"),
                           "algorithm": parse_values("algorithm", "igvva_levels,ispva")}
    assert len(design.check(REFERENCE, LEVELS)) == 8


@pytest.mark.parametrize("argv, message", [
    (["--vary", "stuck_rat=0.1"], "no axis 'stuck_rat': did you mean stuck_rate"),
    (["--vary", "stuck_rate=0:0.1"], "a grid needs the number of values of a range"),
    (["--vary", "stuck_rate=0.1:0:3"], "the range 0.1..0 runs backwards"),
    (["--vary", "stuck_rate=1.5"], "point 0 (stuck_rate = 1.5): DeviceParams: stuck-at rates add up to more than 1"),
    (["--vary", "algorithm=ispva,sgd"], "algorithm = 'sgd': choose one of igvva_levels, igvva, ispva"),
    (["--vary", "window=-1"], "window = '-1': needs at least 0"),
    (["--vary", "step=1.5"], "step = '1.5': needs a whole number"),
    (["--vary", "max_pulses=1:4:0"], "n = '0' needs a whole number of values"),
    (["--vary", "v_t=0.2,-1"], "DeviceParams.v_t = -1.0 must not be negative"),
    (["--vary", "stuck_rate"], "give AXIS=VALUES"),
    (["--vary", "verify_reads=1,3"], "verify_reads = '3': choose one of 1, 2, 4, 8"),
    (["--random", "2", "--vary", "confirm=0:1"], "confirm=0:1: confirm takes a list of 0, 1, not a range"),
    (["--random", "3", "--vary", "read_noise_rel=0.01:0.02", "--chips", "400000"], "more than 1,000,000"),
    (["--scheduler", "myhost"], "give the scheduler's address, e.g. tcp://HOST:8786"),
])
def test_a_bad_design_is_refused_before_any_work_starts(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.setattr("rram_cim.sweep.train_network", _no_work)
    out = tmp_path / "campaign"
    with pytest.raises(SystemExit) as stop:
        main(["sweep", *argv, "--out", str(out)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def _no_work(*args):
    raise AssertionError("work started")


def test_a_design_file_with_unknown_keys_or_another_designs_results_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("rram_cim.sweep.train_network", _no_work)
    design = tmp_path / "design.toml"
    design.write_text("kind = 'grid'\nchip = 3\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", "--design", str(design), "--out", str(tmp_path)])
    assert stop.value.code == 2 and "unknown key(s) chip" in capsys.readouterr().err
    # A results file is never overwritten, nor continued by a design that did not write it.
    rows = ResultsFile(tmp_path / RESULTS, DESIGN, SMALL)
    with rows:
        rows.write(DESIGN.all_points()[0], dict.fromkeys((*METRICS, *RUN_COLUMNS), 0))
    base = ["sweep", "--vary", "stuck_rate=0,0.05", "--chips", "3", "--seed", "5", "--digits", "4", "--steps", "8",
            "--epochs", "2", "--out", str(tmp_path)]
    for argv, message in ((base, "holds a campaign: --resume continues it"),
                          ([*base[:6], "7", *base[7:], "--resume"], "point 0 differs from this design's "
                                                                    "(device_seed"),
                          ([*base[:2], "read_noise_rel=0.02", *base[3:], "--resume"], "has the columns")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_design_error_names_the_axis_and_what_would_be_right():
    with pytest.raises(DesignError, match="kind = 'sobol': a design is 'grid' or 'random'"):
        Design(kind="sobol").check(REFERENCE, LEVELS)
    with pytest.raises(DesignError, match="chips = 0: needs a whole number of at least 1"):
        Design(chips=0).check(REFERENCE, LEVELS)
    assert np.isclose(Design(vary={"d2d_scale": (2.0,)}).all_points()[0].device_params().v_set_d2d_sigma, 0.16)



def test_verify_reads_confirm_and_widened_windows_reach_the_recipes():
    holding = Design(vary={"verify_reads": (4,), "confirm": (1,), "widen": (6.0,)}).check(REFERENCE, LEVELS)[0]
    recipes = point_recipes(holding, REFERENCE, np.array(LEVELS))
    assert {(r.verify_reads, r.confirm) for r in recipes.values()} == {(4, True)}
    assert max(r.window for r in recipes.values()) > 2           # the top levels' windows widened
    single = point_recipes(Design(vary={"algorithm": ("ispva",), "verify_reads": (2,)}).all_points()[0],
                           REFERENCE, np.array(LEVELS))
    assert (single.verify_reads, single.confirm, single.algorithm.name) == (2, False, "ISPVA")
