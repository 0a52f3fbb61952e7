"""`rram-cim sweep`: Monte-Carlo chip yield and P&V recipe campaigns on Dask's distributed scheduler.

Each point of a design (`sweep_design`) is one virtual chip: its cells programmed through P&V on the
golden model (host `Chip` over `ModelTransport`, the device parameters of the point), aged, then scored
on test digits with the network the campaign trained once per network seed and shipped to every worker
(`Client.scatter`, broadcast). A point records accuracy, pulses per cell, failed cells, the share of cells
read back in the spec window (after programming and after relaxing), and the energy per inference.

The engine is Dask distributed, not a pool of our own: a LocalCluster of `--workers` processes on this
machine by default, or an existing scheduler (`--scheduler tcp://HOST:8786`, e.g. dask-jobqueue's on a
Slurm cluster: docs/campaigns.md). Results stream to one CSV file as points finish, so a killed
campaign resumes (`--resume`) without recomputing a finished point; each row carries the point's identity
(index, chip, device seed, values, settings) and a resumed run refuses a file another design wrote.
A point whose worker dies is run again elsewhere (the scheduler's allowed failures), one that raises
is retried (`retries=`); one that still fails is reported with its seed and left for the next --resume.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import os
import pathlib
import socket
import sys
import time
import uuid
from dataclasses import dataclass

import numpy as np

from .cli import UsageError, existing_file, output_folder, seed, whole
from .config import CONFIGS, REFERENCE
from .progress import Bar
from .sweep_design import (DIGITS_MAX, Design, DesignError, Point, design_from_toml, parse_values,
                           point_recipes)

__all__ = ["Settings", "Network", "ResultsFile", "METRICS", "add_arguments", "check_arguments", "run",
           "train_network", "run_point", "execute", "dask_client"]

RESULTS = "results.csv"
#: What each point measures, in this order in the results file.
METRICS = ("accuracy", "pulses_per_cell", "failed_cells", "in_window", "in_recipe_window", "in_window_read",
           "in_window_aged", "energy_nj", "energy_total_nj", "pj_per_event")
#: Where and how long: differ between runs of the same point, so left out of comparisons.
RUN_COLUMNS = ("seconds", "worker")


@dataclass(frozen=True)
class Settings:
    """What every point of a campaign shares."""
    digits: int = 100          # test digits each chip is scored on
    steps: int = 16            # input time steps per inference
    epochs: int = 60           # float training epochs (then half as many quantization-aware)
    spec_window: int = 2       # a cell is in the window when read back within +- this many codes of its target
    config: str = REFERENCE.name


@dataclass(frozen=True)
class Network:
    """A trained and compiled network with its test digits: trained once per network seed on the client,
    shipped to each worker once."""
    seed: int
    mapping: object
    rasters: list
    labels: np.ndarray
    level_codes: np.ndarray
    layer_neurons: tuple
    layer_inputs: tuple
    v_threshold: float          # the neurons' threshold, volts (the energy of a partial reset)


def train_network(settings: Settings, network_seed: int) -> Network:
    """The demo's stages 1-2 (`rram_cim.demo`): the digits split and network trained by `network_seed`,
    quantization- and noise-aware with the reference device's spread, compiled onto the cores."""
    from .host.compiler import compile_network
    from .host.recipes import level_recipes
    from .host.training import TrainSettings, device_spread_us, load_digits, rate_code, train
    from .models.recipes import LEVELS
    config = CONFIGS[settings.config]
    data = load_digits(network_seed)
    level_codes = np.array(LEVELS)
    level_us = level_codes * config.us_per_adc_lsb
    spread = device_spread_us(config, level_codes, level_recipes(config, level_codes), seed=network_seed)
    trained = TrainSettings(steps=settings.steps, epochs=settings.epochs, seed=network_seed)
    _, quantized = train(config, data, level_us, trained, spread)
    mapping = compile_network(quantized.layers(), level_codes, config, trained.threshold_code, trained.v_read_code)
    digits = data.test_x[:settings.digits]
    layers = quantized.layers()
    return Network(network_seed, mapping, [rate_code(x, settings.steps) for x in digits],
                   data.test_y[:settings.digits], level_codes, tuple(layer.neurons for layer in layers),
                   tuple(layer.inputs for layer in layers), trained.threshold_code * config.threshold_volts_per_lsb)


def run_point(point: Point, settings: Settings, network: Network) -> dict:
    """Program and run one virtual chip on the golden model; returns its METRICS and RUN_COLUMNS."""
    from threadpoolctl import threadpool_limits

    from .host.chip import Chip, ModelTransport
    from .models.energy import EnergyMeter
    from .models.macro import AnalogMacro
    from .models.neurons import NeuronParams
    started = time.perf_counter()
    config = CONFIGS[settings.config]
    # One BLAS thread: a worker is one core, and the sums come out the same in every process.
    with threadpool_limits(limits=1):
        transport = ModelTransport(config, point.device_seed)
        # The model transport's macro with this point's device parameters (same seed, same draws).
        transport.macro = AnalogMacro(config, point.device_seed, params=point.device_params())
        chip = Chip(transport, config)
        mapping = network.mapping
        programs = chip.load(mapping, point_recipes(point, config, network.level_codes))
        cells = sum(p.targets.size for p in programs)
        pulses = sum(p.pulses_total for p in programs)
        in_window = _in_window(transport, programs, settings.spec_window)
        in_recipe_window = _in_window(transport, programs, None)
        in_window_read = sum(int((np.abs(p.codes - p.targets) <= settings.spec_window).sum()) for p in programs)
        in_window_aged = in_window
        if point["age_s"] > 0:
            chip.relax(point["age_s"])
            in_window_aged = _in_window(transport, programs, settings.spec_window)
        meter = EnergyMeter()
        neuron = NeuronParams()
        v_read = mapping.v_read_code * config.bl_volts_per_lsb
        right = 0
        for raster, label in zip(network.rasters, network.labels):
            scores, run = chip.classify(mapping, raster)
            right += int(scores.argmax()) == int(label)
            last = transport.last
            # As the demo counts an inference (rram_cim/demo.py, stage 3).
            meter.inference(last.routed, [core.g_us for core in transport.macro.cores], v_read,
                            network.layer_neurons, config.neurons, neuron.c_sample_ff, run.spikes,
                            layer_inputs=network.layer_inputs, c_int_ff=neuron.c_int_ff,
                            v_threshold=network.v_threshold, dac_bits=config.dac_bits)
    n = max(len(network.labels), 1)
    energy = meter.per_inference_nj(n)
    return {"accuracy": right / n, "pulses_per_cell": pulses / cells,
            "failed_cells": sum(p.cells_failed for p in programs), "in_window": in_window / cells,
            "in_recipe_window": in_recipe_window / cells, "in_window_read": in_window_read / cells,
            "in_window_aged": in_window_aged / cells, "energy_nj": energy["array"],
            "energy_total_nj": energy["total"],
            "pj_per_event": meter.total_pj / meter.synaptic_events if meter.synaptic_events else float("nan"),
            "seconds": time.perf_counter() - started, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _in_window(transport, programs, window: int | None) -> int:
    """Cells whose conductance (the model's, without read noise) is within `window` codes of the target
    (None: each cell's own recipe window, which `widen` may have widened).
    One read-back through the sense path adds the read noise (2 % and 0.1 uS by default, several codes
    at the top levels), which would hide what the recipe did: it is recorded apart (in_window_read)."""
    us_per_code = transport.config.us_per_adc_lsb
    return sum(int((np.abs(transport.macro.cores[p.core].g_us[:len(p.targets)] / us_per_code - p.targets)
                    <= (p.window if window is None else window)).sum()) for p in programs)


# ---- the results file ------------------------------------------------------------------------------------
def _text(value) -> str:
    """A value as the results file holds it: floats by repr, so they read back bit for bit."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


class ResultsFile:
    """One CSV file, one row per finished point, appended and flushed as each finishes (a killed run
    loses at most the row it was writing, whose partial line the next --resume cuts off).

    Columns: the point's identity (index, chip, device seed, network seed, the design's axes, the
    campaign settings), then METRICS, then RUN_COLUMNS."""

    def __init__(self, path: pathlib.Path, design: Design, settings: Settings):
        self.path = pathlib.Path(path)
        self.settings = settings
        axes = [name for name in design.vary if name != "network_seed"]
        self.identity = ("point", "chip", "device_seed", "network_seed", *axes, "digits", "steps", "epochs",
                         "spec_window", "config")
        self.columns = (*self.identity, *METRICS, *RUN_COLUMNS)
        self._file = None

    def key(self, point: Point) -> tuple[str, ...]:
        values = {"point": point.index, "chip": point.chip, "device_seed": point.device_seed,
                  "digits": self.settings.digits, "steps": self.settings.steps, "epochs": self.settings.epochs,
                  "spec_window": self.settings.spec_window, "config": self.settings.config}
        return tuple(_text(values[name] if name in values else point[name]) for name in self.identity)

    def finished(self, points: list[Point]) -> set[int]:
        """The points already in the file (and the file cut back to its last whole line). DesignError if
        the file was written by another design or with other settings."""
        if not self.path.exists():
            return set()
        data = self.path.read_bytes()
        whole_lines = data[:data.rfind(b"\n") + 1]
        if len(whole_lines) != len(data):            # a row cut short by a kill: it is run again
            with open(self.path, "r+b") as f:
                f.truncate(len(whole_lines))
        rows = list(csv.reader(io.StringIO(whole_lines.decode())))
        if not rows:
            return set()
        if tuple(rows[0]) != self.columns:
            raise DesignError(f"{self.path} has the columns {', '.join(rows[0])}; this design writes "
                              f"{', '.join(self.columns)}: give another --out, or remove the file")
        by_index = {point.index: point for point in points}
        done = set()
        width = len(self.identity)
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != len(self.columns):
                raise DesignError(f"{self.path}:{line}: {len(row)} fields, not {len(self.columns)}")
            index = int(row[0])
            point = by_index.get(index)
            if point is None or tuple(row[:width]) != self.key(point):
                theirs = dict(zip(self.identity, row[:width]))
                ours = dict(zip(self.identity, self.key(point))) if point else None
                differ = [f"{k} {theirs[k]} there, {ours[k]} here" for k in self.identity
                          if ours and theirs[k] != ours[k]]
                raise DesignError(f"{self.path}:{line}: point {index} "
                                  + (f"differs from this design's ({'; '.join(differ)})" if point
                                     else "is not in this design")
                                  + ": give another --out, or remove the file")
            done.add(index)
        return done

    def __enter__(self) -> "ResultsFile":
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        if new:
            self._writer.writerow(self.columns)
            self._file.flush()
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def write(self, point: Point, measured: dict) -> None:
        self._writer.writerow((*self.key(point), *(_text(measured[name]) for name in (*METRICS, *RUN_COLUMNS))))
        self._file.flush()


def read_results(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The results file as columns: numbers as float arrays, text as string arrays, sorted by point."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {"point": np.zeros(0)}
    header, rows = rows[0], [row for row in rows[1:] if len(row) == len(rows[0])]
    rows.sort(key=lambda row: int(row[0]))
    columns = {}
    for i, name in enumerate(header):
        values = [row[i] for row in rows]
        try:
            columns[name] = np.array([float(v) for v in values])
        except ValueError:
            columns[name] = np.array(values)
    return columns


# ---- the engine ------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    ran: int
    skipped: int
    failed: list
    seconds: float             # the whole run: training, engine start, points
    train_s: float = 0.0       # of which training the networks


def execute(points: list[Point], settings: Settings, results: ResultsFile, *, workers: int = 2,
            scheduler: str | None = None, client=None, function=run_point, retries: int = 2,
            resume: bool = False, stream=None) -> Outcome:
    """Run the points not yet in `results` (all of them unless `resume`): in this process when `workers`
    is 0 and no client or scheduler is given, else on Dask (`client`, else a Client of `scheduler`, else a
    LocalCluster of `workers` processes). Rows are written as points finish, in the order they finish."""
    stream = stream or sys.stdout
    if not resume and results.path.exists() and results.path.stat().st_size:
        raise DesignError(f"{results.path} holds a campaign: resume it, or write elsewhere")
    done = results.finished(points) if resume else set()
    todo = [point for point in points if point.index not in done]
    started = time.perf_counter()
    if not todo:
        return Outcome(0, len(done), [], 0.0)
    seeds = sorted({point["network_seed"] for point in todo})
    print(f"sweep: training {len(seeds)} network(s) (seed {', '.join(map(str, seeds))}), once for the campaign",
          file=stream, flush=True)
    networks = {s: train_network(settings, s) for s in seeds}
    train_s = time.perf_counter() - started
    bar = Bar("sweep", len(todo), stream=stream)
    failed = []
    accuracies = []

    def finished(point, measured=None, error=None):
        if error is not None:
            failed.append((point, error))
            print(f"\nsweep: point {point.index} (chip {point.chip}, device seed {point.device_seed}, "
                  f"{point.values}) failed: {error!r}", file=stream, flush=True)
        else:
            results.write(point, measured)
            accuracies.append(measured["accuracy"])
        bar.step(f"mean accuracy {np.mean(accuracies):.3f}" if accuracies else "")

    with results:
        if workers == 0 and client is None and scheduler is None:
            for point in todo:
                try:
                    measured = function(point, settings, networks[point["network_seed"]])
                except Exception as error:          # reported with its seed; the next --resume runs it again
                    finished(point, error=error)
                else:
                    finished(point, measured)
        else:
            with dask_client(client, scheduler, workers) as dask:
                _distribute(dask, todo, settings, networks, function, retries, finished)
    return Outcome(len(todo) - len(failed), len(done), failed, time.perf_counter() - started, train_s)


@contextlib.contextmanager
def dask_client(client, scheduler: str | None, workers: int):
    """`client` as it is, else a Client of `scheduler`, else of a LocalCluster of `workers` processes."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster
    if scheduler:
        with Client(scheduler) as dask:
            yield dask
        return
    # Processes, one thread each: the models hold the GIL, so threads would share one core.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as dask:
        yield dask


def _distribute(dask, todo, settings, networks, function, retries, finished) -> None:
    from distributed import as_completed
    if not dask.scheduler_info()["workers"]:
        # A cluster whose workers are still queued (dask-jobqueue's batch jobs): nothing to ship to yet.
        print(f"sweep: waiting for the first worker of {dask.scheduler.address}", flush=True)
        dask.wait_for_workers(1)
    shipped = {s: dask.scatter(network, broadcast=True) for s, network in networks.items()}
    campaign = uuid.uuid4().hex[:8]
    futures = {dask.submit(function, point, settings, shipped[point["network_seed"]], retries=retries,
                           key=f"sweep-{campaign}-point-{point.index}"): point for point in todo}
    for future in as_completed(futures):
        point = futures.pop(future)
        try:
            measured = future.result()
        except Exception as error:
            finished(point, error=error)
        else:
            finished(point, measured)
        future.release()


# ---- the command line -------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design", type=existing_file, default=None,
                        help="a design file (TOML: kind, points, chips, seed, [vary]; docs/campaigns.md)")
    parser.add_argument("--vary", action="append", default=[], metavar="AXIS=VALUES",
                        help="an axis and its values: a,b,c or low:high:n (grid) or low:high (random); "
                             "axes: d2d_scale, c2c_scale, stuck_rate, any float of DeviceParams (read_noise_rel, "
                             "relax_settle_s, ...), algorithm, step, window, max_pulses, verify_reads, confirm, widen, "
                             "age_s, network_seed")
    parser.add_argument("--random", type=whole(1), default=None, metavar="N",
                        help="a random design of N parameter combinations (default: a grid)")
    parser.add_argument("--chips", type=whole(1), default=None, help="device seeds per combination (default 1)")
    parser.add_argument("--seed", type=seed, default=None, help="the campaign seed (default 1)")
    parser.add_argument("--digits", type=whole(1, DIGITS_MAX + 1), default=100,
                        help=f"test digits each chip is scored on (1 to {DIGITS_MAX}, default 100)")
    from .host.training import STEPS_MAX
    parser.add_argument("--steps", type=whole(1, STEPS_MAX + 1), default=16, help="input time steps per inference")
    parser.add_argument("--epochs", type=whole(1), default=60, help="float training epochs (then half as many QAT)")
    parser.add_argument("--spec-accuracy", type=float, default=0.95,
                        help="a chip meets spec at this test accuracy or more (yield; default 0.95)")
    parser.add_argument("--spec-window", type=whole(0, 256), default=2,
                        help="a cell is in window read back within +- this many ADC codes of its target (default 2)")
    parser.add_argument("--workers", type=whole(0, 257), default=2,
                        help="worker processes of the local Dask cluster (default 2; 0: serial, in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing Dask scheduler (tcp://HOST:8786) instead of a local cluster")
    parser.add_argument("--retries", type=whole(0, 100), default=2, help="retries of a point that raises (default 2)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the campaign in --out: run only the points its results file lacks")
    parser.add_argument("--out", type=output_folder, default="out/sweep",
                        help=f"folder for {RESULTS}, summary.json and the plots (default out/sweep)")


def build_design(args: argparse.Namespace) -> Design:
    """The design of the command line: --design's file, with --vary, --random, --chips and --seed over it."""
    base = Design()
    if args.design:
        base = design_from_toml(pathlib.Path(args.design).read_text(), str(args.design))
    vary = dict(base.vary)
    for item in args.vary:
        name, sep, values = item.partition("=")
        if not sep:
            raise DesignError(f"--vary {item}: give AXIS=VALUES, e.g. read_noise_rel=0.02,0.05")
        vary[name.strip()] = parse_values(name.strip(), values)
    kind, points = base.kind, base.points
    if args.random is not None:
        kind, points = "random", args.random
    return Design(kind=kind, vary=vary, points=points,
                  chips=args.chips if args.chips is not None else base.chips,
                  seed=args.seed if args.seed is not None else base.seed)


def check_arguments(args: argparse.Namespace) -> None:
    """The design built and every point checked, the results file checked against it: all before any
    work, so a bad campaign is refused in one line (exit status 2)."""
    from .models.recipes import LEVELS
    config = CONFIGS[getattr(args, "config", REFERENCE.name)]
    if args.scheduler is not None and "://" not in args.scheduler:
        raise UsageError(f"--scheduler {args.scheduler}: give the scheduler's address, e.g. tcp://HOST:8786")
    if not 0 <= args.spec_accuracy <= 1:
        raise UsageError(f"--spec-accuracy {args.spec_accuracy}: an accuracy is 0..1")
    try:
        design = build_design(args)
        points = design.check(config, LEVELS)
        settings = Settings(args.digits, args.steps, args.epochs, args.spec_window, config.name)
        results = ResultsFile(pathlib.Path(args.out) / RESULTS, design, settings)
        if results.path.exists() and not args.resume:
            raise DesignError(f"{results.path} holds a campaign: --resume continues it; remove it (or give "
                              f"another --out) to start again")
        if args.resume:
            results.finished(points)
    except DesignError as error:
        raise UsageError(str(error)) from None
    args.sweep = (design, points, settings, results)


def run(args: argparse.Namespace) -> int:
    from .sweep_report import report
    design, points, settings, results = args.sweep
    engine = (f"Dask scheduler {args.scheduler}" if args.scheduler else
              f"a local Dask cluster of {args.workers} worker processes" if args.workers else "this process")
    print(f"rram-cim sweep: {design.kind} design, {len(points)} points ({len(points) // design.chips} combinations x "
          f"{design.chips} chips), seed {design.seed}, {settings.digits} test digits each; on {engine}")
    try:
        outcome = execute(points, settings, results, workers=args.workers, scheduler=args.scheduler,
                          retries=args.retries, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\nsweep: interrupted; the finished points are in {results.path}: --resume continues")
        return 130
    print(f"sweep: {outcome.ran} points run in {outcome.seconds:.1f} s"
          + (f" ({outcome.ran / outcome.seconds:.2f} points/s)" if outcome.ran else "")
          + (f", {outcome.skipped} already in {results.path}" if outcome.skipped else ""))
    summary = report(results.path, pathlib.Path(args.out), design, args.spec_accuracy,
                     {"wall_s": outcome.seconds, "ran": outcome.ran, "skipped": outcome.skipped,
                      "workers": args.workers, "scheduler": args.scheduler})
    if outcome.failed:
        print(f"sweep: {len(outcome.failed)} point(s) failed (above, with their seeds): --resume runs them again")
        return 1
    return 0 if summary else 1
