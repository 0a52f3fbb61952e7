"""`rram-cim demo`: scikit-learn's digits end to end on the chip.

1. Train a spiking network (64 pixels -> 32 hidden -> 10 classes) in the chip's own terms, quantization-
   and noise-aware (`host.training`), with the device model's programming-plus-relaxation spread.
2. Compile it onto the two cores (`host.compiler`): conductance targets, routing, ADC-mode neurons.
3. Evaluate on the held-out split through the chip's inference rules (`models.inference`):
   float (unrounded levels, ideal cells), quantized (ideal cells at the levels), and the chip's golden
   model (`ModelTransport`: every cell programmed by P&V on the device model), then after 1 hour and
   1 day of relaxation.
4. Co-simulation (`CosimTransport`): the generated Verilog under Verilator (or Icarus), driven through
   its SPI pins by the same host code that drives a board: every cell programmed by the RTL P&V engine,
   read back, then spiking inference on the first `--samples` test digits, each run compared event for
   event with the golden model's.
5. Report P&V statistics, spikes and synaptic events per inference, energy (beside SPIRIT's figures),
   and plots: confusion matrix, conductances target vs achieved, a spike raster, P&V convergence.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .cli import SEED_LIMIT, UsageError, existing_file, output_folder, seed, whole
from .config import CONFIGS, REFERENCE, ChipConfig
from .progress import Bar

__all__ = ["OUTPUTS", "add_arguments", "check_arguments", "run", "staged"]

#: What a run leaves in --out, all from the same run: the network, the report and the plots.
PLOTS = ("confusion.png", "conductances.png", "raster.png", "convergence.png")
OUTPUTS = ("network.npz", "report.json", *PLOTS)
#: The simulator's own output (cocotb, GPI, Verilator): kept out of the demo's, here in --out.
SIMULATOR_LOG = "simulator.log"

#: The eight conductance levels (ADC codes, 10 ... 115 uS) the P&V benches measured (sim/pv_reference.py).
RELAX_AGES = (("1 hour", 3600.0), ("1 day", 86400.0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=("cosim", "model", "fpga-sim", "serial"), default="cosim",
                        help="cosim: also run the RTL co-simulation (default); model: golden models only; "
                             "fpga-sim: the FPGA build co-simulated through its UART; serial: a board")
    parser.add_argument("--port", default=None, help="the board's serial port (serial; default: found by USB ID)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default=None,
                        help="co-simulation simulator (default: Verilator when installed)")
    parser.add_argument("--samples", type=whole(1), default=100,
                        help="test digits run in co-simulation (default 100; the models run all 360)")
    parser.add_argument("--seed", type=seed, default=1,
                        help=f"data split, training and device seed (0 to {SEED_LIMIT - 1})")
    from .host.training import STEPS_MAX
    parser.add_argument("--steps", type=whole(1, STEPS_MAX + 1), default=16,
                        help=f"input time steps per inference (1 to {STEPS_MAX})")
    parser.add_argument("--epochs", type=whole(1), default=60,
                        help="float training epochs (then half as many QAT)")
    parser.add_argument("--neuron-noise", action="store_true",
                        help="neurons with kT/C noise and comparator offsets (default off)")
    parser.add_argument("--network", type=existing_file, default=None,
                        help="load a trained network (.npz, as the demo saves it) instead of training")
    parser.add_argument("--out", type=output_folder, default="out/demo",
                        help="folder for the plots, report.json and network.npz")


def check_arguments(args: argparse.Namespace) -> None:
    """What the parser cannot check one argument at a time, before any work: raises UsageError for
    arguments that do not go together, SystemExit for a machine that cannot run the request."""
    if args.port is not None:
        if args.transport != "serial":
            raise UsageError(f"--port is for --transport serial, not {args.transport}")
        # pyserial also opens URLs (socket://, rfc2217://); only a device path can be checked here.
        if "://" not in args.port and not os.path.exists(args.port):
            raise UsageError(f"--port {args.port}: no such device (leave --port out to find the board by its USB ID)")
    if args.transport == "serial" and args.port is None:
        # No board, no point training first: find it now, or say so at once.
        from .host.frames import LinkError
        from .host.serial_link import find_board_port
        try:
            args.port = find_board_port()
        except LinkError as error:
            raise SystemExit(f"rram-cim demo: {error}") from None
    if args.transport in ("cosim", "fpga-sim"):
        from .sim.toolchain import default_simulator, missing_simulator_message
        problem = missing_simulator_message(args.simulator or default_simulator())
        if problem:
            raise SystemExit(f"rram-cim demo: {problem}")


@contextlib.contextmanager
def staged(folder: pathlib.Path, outputs: tuple[str, ...] = OUTPUTS):
    """A scratch folder inside `folder` to write a run's outputs into. When the block ends well, each file
    is renamed over its namesake in `folder` (a rename within one file system is atomic) and any of
    `outputs` the run did not write is removed, so that the folder describes one run; when it raises,
    the scratch folder goes and `folder` keeps the previous run's outputs as they were."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".partial-", dir=folder))
    try:
        yield scratch
        written = {path.name for path in scratch.iterdir()}
        for name in written:
            os.replace(scratch / name, folder / name)
        for name in set(outputs) - written:
            (folder / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Evaluation:
    name: str
    predictions: np.ndarray
    labels: np.ndarray
    events: list = field(default_factory=list)
    spikes: float = 0.0
    row_events: float = 0.0

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean()) if len(self.labels) else float("nan")

    def on(self, count: int) -> float:
        return float((self.predictions[:count] == self.labels[:count]).mean())


def _evaluate(name: str, chip, mapping, rasters, labels, keep_events: bool = False, on_run=None) -> Evaluation:
    bar = Bar(f"inference: {name}", len(rasters))
    predictions, events, spikes, rows = [], [], 0, 0
    for i, raster in enumerate(rasters):
        scores, run = chip.classify(mapping, raster)
        predictions.append(int(scores.argmax()))
        spikes += run.spikes
        rows += run.row_events
        if keep_events:
            events.append(run.events)
        if on_run:
            on_run(i, run)
        bar.step(f"accuracy so far {np.mean(np.array(predictions) == labels[:i + 1]):.3f}")
    n = max(len(rasters), 1)
    return Evaluation(name, np.array(predictions), np.asarray(labels), events, spikes / n, rows / n)


def run(args: argparse.Namespace) -> int:
    """The demo (arguments checked by `check_arguments`); `--out` gets its outputs only if it ends well."""
    out = pathlib.Path(args.out)
    # A run without a simulator leaves no simulator log, so an older one would not describe this run.
    outputs = OUTPUTS + ((SIMULATOR_LOG,) if args.transport in ("model", "serial") else ())
    with staged(out, outputs) as scratch:
        return _run(args, out, scratch)


def _run(args: argparse.Namespace, out: pathlib.Path, scratch: pathlib.Path) -> int:
    """The demo, writing into `scratch` what will be in `out` once it ends well (`run`)."""
    from .host.chip import Chip, ModelTransport
    from .host.compiler import CompileError, compile_network
    from .host.recipes import level_recipes
    from .host.training import (TrainSettings, device_spread_us, load_digits, load_networks, rate_code,
                                save_networks, train)
    from .models.energy import EnergyMeter
    from .models.neurons import NeuronParams
    from .sim.pv_reference import LEVELS

    config: ChipConfig = CONFIGS[getattr(args, "config", REFERENCE.name)]
    started = time.perf_counter()
    timings: dict[str, float] = {}
    print(f"rram-cim demo: chip {config.name}, {config.cores} cores of {config.rows}x{config.columns} cells, "
          f"{config.neurons} neurons each; seed {args.seed}")

    # ---- 1. data and training ---------------------------------------------------------------------------
    data = load_digits(args.seed)
    print(f"data: scikit-learn digits, {len(data.train_y)} training and {len(data.test_y)} test images (8x8)")
    level_codes = np.array(LEVELS)
    level_us = level_codes * config.us_per_adc_lsb
    recipes = level_recipes(config, level_codes)
    spread = device_spread_us(config, level_codes, recipes, seed=args.seed)
    print("device spread injected in training (P&V + 1 day relaxation, uS per level): "
          + " ".join(f"{s:.1f}" for s in spread))
    settings = TrainSettings(steps=args.steps, epochs=args.epochs, seed=args.seed)
    bars: dict[str, Bar] = {}

    def trained(phase, epoch, epochs, loss):
        bar = bars.setdefault(phase, Bar(f"training: {phase}", epochs))
        bar.update(epoch, f"loss {loss:.4f}")
    t = time.perf_counter()
    if args.network:
        try:
            floating, quantized = load_networks(args.network, config)
        except ValueError as error:
            raise SystemExit(f"rram-cim demo: {error}") from None
        if not np.allclose(quantized.level_us, level_us):
            raise SystemExit(f"rram-cim demo: {args.network} was trained for other conductance levels")
        settings = quantized.settings
        # A copy beside the report, so that --out holds the network its figures came from.
        shutil.copyfile(args.network, scratch / "network.npz")
        print(f"network: loaded {args.network} (trained with seed {settings.seed}, {settings.steps} steps)")
    else:
        floating, quantized = train(config, data, level_us, settings, spread, progress=trained)
        save_networks(scratch / "network.npz", floating, quantized)
        print(f"network: trained; saved as {out / 'network.npz'} at the end of the run (reuse with --network)")
    timings["train_s"] = time.perf_counter() - t
    try:
        mapping = compile_network(quantized.layers(), level_codes, config, settings.threshold_code,
                                  settings.v_read_code)
    except CompileError as error:
        raise SystemExit(f"rram-cim demo: the network does not fit the {config.name} chip: {error}") from None
    print(f"compiled: layer 0 on core 0 (64 inputs -> {settings.hidden}), layer 1 on core 1 "
          f"({settings.hidden} -> 10); {len(level_codes)} levels {level_us[0]:.0f}-{level_us[-1]:.0f} uS; "
          f"threshold {settings.threshold_code} codes, read {settings.v_read_code * config.bl_volts_per_lsb:.3f} V, "
          f"ADC-mode neurons, {settings.steps} steps + {mapping.flush_steps} flush")
    rasters = [rate_code(x, settings.steps) for x in data.test_x]
    labels = data.test_y

    # ---- 2. golden models ---------------------------------------------------------------------------------
    t = time.perf_counter()
    float_model = ModelTransport(config, args.seed, neuron_noise=args.neuron_noise)
    for core in range(len(mapping.targets)):
        float_model.set_conductances(core, _float_conductances(floating, core, config, level_us[0]))
    float_chip = Chip(float_model, config)
    float_chip.configure(mapping)
    evaluations = {"float": _evaluate("float (ideal cells)", float_chip, mapping, rasters, labels)}
    ideal = Chip(ModelTransport(config, args.seed, neuron_noise=args.neuron_noise, ideal=True), config)
    ideal.load(mapping)
    evaluations["quantized"] = _evaluate("quantized (ideal cells)", ideal, mapping, rasters, labels)

    model_transport = ModelTransport(config, args.seed, neuron_noise=args.neuron_noise)
    model_chip = Chip(model_transport, config)
    model_programs = model_chip.load(mapping, recipes)
    meter = EnergyMeter()
    layer_neurons = [layer.neurons for layer in quantized.layers()]
    c_sample = NeuronParams().c_sample_ff
    v_read = mapping.v_read_code * config.bl_volts_per_lsb
    raster_of_first = {}

    def account(i, result):
        last = model_transport.last
        for delivered in last.routed:
            for core in range(config.cores):
                rows = [row for c, row in delivered if c == core]
                if rows:
                    v_rows = np.zeros(config.rows)
                    v_rows[rows] = v_read
                    meter.read(model_transport.macro.cores[core].g_us, v_rows)
        synaptic = sum(layer_neurons[c] for step in last.routed for c, _ in step if c < len(layer_neurons))
        meter.events(synaptic, len(last.routed) * config.cores * config.neurons, c_sample)
        meter.fired(result.spikes)
        if i == 0:
            raster_of_first["spikes"] = last.spikes.copy()
    evaluations["chip_model"] = _evaluate("chip (golden model)", model_chip, mapping, rasters, labels,
                                          keep_events=True, on_run=account)
    timings["models_s"] = time.perf_counter() - t

    # ---- 3. co-simulation ---------------------------------------------------------------------------------
    cosim = None
    samples = min(args.samples, len(labels))
    if args.transport != "model":
        t = time.perf_counter()
        log = out / SIMULATOR_LOG
        try:
            with _child_output_to(log if args.transport != "serial" else None):
                cosim = _on_chip(args.transport, config, mapping, recipes, rasters[:samples], labels[:samples],
                                 args, evaluations["chip_model"].events[:samples])
        except (RuntimeError, OSError) as error:      # LinkError, CosimError, a failed simulator build
            where = f"; the simulator's output is in {log}" if args.transport != "serial" else ""
            raise SystemExit(f"rram-cim demo: {args.transport} failed: {error}{where}; "
                             f"{out} keeps the previous run's outputs") from None
        timings["cosim_s"] = time.perf_counter() - t

    # ---- 4. relaxation (golden model, the same programmed cells) -------------------------------------------
    aged = 0.0
    for label, age in RELAX_AGES:
        model_chip.relax(age - aged)
        aged = age
        evaluations[f"relaxed {label}"] = _evaluate(f"chip after {label}", model_chip, mapping, rasters, labels)

    # ---- 5. report ------------------------------------------------------------------------------------------
    inferences = len(rasters)
    spi_bits = cosim["spi_bytes_per_inference"] * 8 if cosim else None
    if spi_bits is not None:
        meter.spi(int(spi_bits * inferences))
    energy = meter.per_event()
    report = {
        "config": config.name, "seed": args.seed, "steps": settings.steps, "test_images": inferences,
        "cosim_images": samples if cosim else 0,
        "accuracy": {name: e.accuracy for name, e in evaluations.items()},
        "accuracy_on_cosim_subset": {name: e.on(samples) for name, e in evaluations.items()},
        "programming": [_pv_stats(r, level_codes, config) for r in (cosim["programs"] if cosim else model_programs)],
        "spikes_per_inference": evaluations["chip_model"].spikes,
        "row_events_per_inference": evaluations["chip_model"].row_events,
        "synaptic_events_per_inference": meter.synaptic_events / inferences,
        "energy_pj_per_synaptic_event": energy,
        "energy_nj_per_inference": {"array": meter.array_pj / inferences / 1e3,
                                    "total": meter.total_pj / inferences / 1e3},
        "timings_s": timings,
    }
    if cosim:
        report["cosim"] = {k: v for k, v in cosim.items() if k not in ("programs", "evaluation")}
        key = {"cosim": "chip_rtl_cosim", "fpga-sim": "chip_fpga_sim", "serial": "chip_board"}[args.transport]
        report["accuracy"][key] = report["accuracy_on_cosim_subset"][key] = cosim["evaluation"].accuracy
    _print_report(report, evaluations, cosim)
    _plots(scratch, out, evaluations["chip_model"], cosim["programs"] if cosim else model_programs, level_codes, config,
           rasters[0], raster_of_first["spikes"], labels[0], evaluations["chip_model"].predictions[0], quantized)
    report["timings_s"]["total_s"] = time.perf_counter() - started
    (scratch / "report.json").write_text(json.dumps(report, indent=2, default=_jsonable))
    print(f"report: {out / 'report.json'}; total {report['timings_s']['total_s']:.0f} s")
    if cosim and cosim["identical"] is not None and cosim["identical"] != samples:
        print("FAILED: the co-simulation disagreed with the golden model")
        return 1
    return 0


def _float_conductances(network, core: int, config: ChipConfig, floor_us: float) -> np.ndarray:
    g_plus, g_minus = network.conductances(core)
    g = np.full((config.rows, config.columns), floor_us)
    g[:g_plus.shape[0], 0:2 * g_plus.shape[1]:2] = g_plus
    g[:g_minus.shape[0], 1:2 * g_minus.shape[1]:2] = g_minus
    return g


#: What each chip transport is called in the report.
CHIP_RUNS = {"cosim": "chip, RTL co-simulation", "fpga-sim": "chip, FPGA build co-simulated",
             "serial": "chip on the board"}


def _open_transport(kind: str, config, args):
    if kind == "serial":
        from .host.serial_link import SerialTransport
        return SerialTransport(args.port)
    from .sim.cosim_link import CosimTransport
    return CosimTransport(args.simulator, config, seed=args.seed, neuron_noise=args.neuron_noise,
                          block="fpga_uart" if kind == "fpga-sim" else "chip")


@contextlib.contextmanager
def _child_output_to(log: pathlib.Path | None):
    """Send what child processes print (the simulator: cocotb's and the GPI's log lines, its test summary)
    to `log`, and keep this process's own output where it was.

    The simulator is a process that cocotb's runner starts with this process's standard output and error
    as its own, so the only way to catch its lines is at the file descriptors: 1 and 2 point at `log`
    while the block runs, and `sys.stdout`/`sys.stderr`, where they were those descriptors, write to
    copies of the originals instead."""
    if log is None:
        yield
        return
    streams = (sys.stdout, sys.stderr)
    for stream in streams:
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    own = [_copy_if_on(stream, fd, saved[fd]) for stream, fd in zip(streams, (1, 2))]
    try:
        with open(log, "wb") as sink:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(own[0]), contextlib.redirect_stderr(own[1]):
                yield
    finally:
        for stream in own:
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        for new, old in zip(own, streams):
            if new is not old:
                new.close()


def _copy_if_on(stream, fd: int, copy: int):
    """`stream` if it does not write to descriptor `fd` (pytest's capture, say), else a stream on `copy`."""
    try:
        on_fd = stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        on_fd = False
    if not on_fd:
        return stream
    return os.fdopen(os.dup(copy), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8")


def _on_chip(kind, config, mapping, recipes, rasters, labels, args, golden_events) -> dict:
    """Program and run the network through a frame transport: the RTL co-simulation (event for event
    against the golden model), the FPGA build co-simulated, or a board."""
    from .host.chip import Chip
    from .host.frames import LinkError
    from .host.registers import IdentityError
    with _open_transport(kind, config, args) as transport:
        chip = Chip(transport, config)
        try:
            chip.identify()
        except (IdentityError, LinkError) as error:
            raise SystemExit(f"rram-cim demo: {error}") from None
        clock = getattr(transport, "sim_seconds", lambda: float("nan"))
        bars: dict[tuple[int, str], Bar] = {}
        last = {}

        def programmed(core, done, total):
            # Each core is programmed, then read back by a verify-only run of the engine whose count
            # starts again from zero: a count that falls is the read-back, a bar of its own.
            phase = "read-back" if done < last.get(core, 0) or (core, "read-back") in bars else "P&V"
            last[core] = done
            bars.setdefault((core, phase), Bar(f"{phase} ({kind}): core {core}", total)).update(done)
        t = time.perf_counter()
        programs = chip.load(mapping, recipes, progress=programmed)
        program_wall, program_sim = time.perf_counter() - t, clock()
        frames, sent = transport.frames, transport.bytes
        t = time.perf_counter()
        identical = []

        def compare(i, run):
            identical.append(run.events == golden_events[i])
        evaluation = _evaluate(f"{CHIP_RUNS[kind]} ({getattr(transport, 'simulator', 'serial')})", chip, mapping,
                               rasters, labels, on_run=compare if kind == "cosim" else None)
        infer_wall, infer_sim = time.perf_counter() - t, clock() - program_sim
        n = len(rasters)
        built = getattr(transport, "built", None)
        return {"transport": kind, "simulator": getattr(transport, "simulator", None),
                "build_s": built.seconds if built else None, "programs": programs,
                "program_wall_s": program_wall, "program_sim_s": program_sim, "evaluation": evaluation,
                "identical": int(sum(identical)) if kind == "cosim" else None, "inference_wall_s": infer_wall / n,
                "inference_sim_ms": infer_sim / n * 1e3, "spi_frames_per_inference": (transport.frames - frames) / n,
                "spi_bytes_per_inference": (transport.bytes - sent) / n}


def _pv_stats(result, level_codes, config) -> dict:
    us = config.us_per_adc_lsb
    error = (result.codes - result.targets) * us
    return {"core": result.core, "cells": int(result.targets.size), "mean_pulses": float(result.pulses.mean()),
            "max_pulses": int(result.pulses.max()), "failed": result.cells_failed,
            "in_window_on_read_back": float(result.in_window.mean()),
            "sigma_us_per_level": [float(error[result.targets == c].std()) if np.any(result.targets == c)
                                   else None for c in level_codes]}


def _print_report(report, evaluations, cosim) -> None:
    print("\n=== accuracy on the held-out digits ===")
    n = report["cosim_images"]
    print(f"{'model':<34} {'all ' + str(report['test_images']):>9} {('first ' + str(n)) if n else '':>10}")
    names = {"float": "float (unrounded levels, ideal)", "quantized": "quantized (8 levels, ideal cells)",
             "chip_model": "chip, golden model (P&V cells)", "relaxed 1 hour": "chip, golden model, 1 hour later",
             "relaxed 1 day": "chip, golden model, 1 day later"}
    for key, label in names.items():
        e = evaluations[key]
        print(f"{label:<34} {e.accuracy:>9.3f} {f'{e.on(n):.3f}' if n else '':>10}")
    if cosim:
        e = cosim["evaluation"]
        print(f"{CHIP_RUNS[cosim['transport']]:<34} {'':>9} {e.accuracy:>10.3f}")
        if cosim["identical"] is not None:
            print(f"co-simulation: {cosim['identical']} of {n} inferences identical, event for event, to the golden "
                  "model")
        else:
            print("(emulated cells and ideal neurons of the FPGA build: no golden model to compare event for event)")
        print(f"{cosim['transport']} ({cosim['simulator'] or 'board'}): {cosim['inference_wall_s']:.2f} s wall and "
              f"{cosim['inference_sim_ms']:.2f} ms chip time per inference, "
              f"{cosim['spi_frames_per_inference']:.0f} frames ({cosim['spi_bytes_per_inference']:.0f} B)")
    print("\n=== program and verify (per-level IGVVA, window +-1 uS) ===")
    for p in report["programming"]:
        print(f"core {p['core']}: {p['cells']} cells, {p['mean_pulses']:.2f} pulses/cell (max {p['max_pulses']}), "
              f"{p['failed']} failed, {100 * p['in_window_on_read_back']:.0f} % in window on read-back; "
              "sigma per level (uS): " + " ".join("-" if s is None else f"{s:.2f}" for s in p["sigma_us_per_level"]))
    if cosim:
        build = f", build {cosim['build_s']:.0f} s" if cosim["build_s"] is not None else ""
        print(f"programming ({cosim['transport']}): {cosim['program_sim_s']:.3f} s chip time, "
              f"{cosim['program_wall_s']:.0f} s wall ({cosim['simulator'] or 'board'}{build})")
    print("\n=== activity and energy per inference (golden model) ===")
    e = report["energy_pj_per_synaptic_event"]
    print(f"{report['spikes_per_inference']:.0f} spikes, {report['row_events_per_inference']:.0f} row events, "
          f"{report['synaptic_events_per_inference']:.0f} synaptic events")
    spi = "" if cosim else " (no SPI: model transport only)"
    print(f"energy per synaptic event: array {e['array_pj']:.2f} pJ (SPIRIT {e['spirit_array_pj']} pJ), "
          f"with logic and SPI {e['total_pj']:.1f} pJ{spi} (SPIRIT {e['spirit_total_pj']:.0f} pJ)")
    per = report["energy_nj_per_inference"]
    print(f"energy per inference: array {per['array']:.2f} nJ, total {per['total']:.1f} nJ")


def _plots(scratch, out, evaluation, programs, level_codes, config, raster, spikes, label, predicted, network) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    figure, axis = plt.subplots(figsize=(5, 4.4))
    matrix = confusion_matrix(evaluation.labels, evaluation.predictions, labels=range(10))
    axis.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            axis.text(j, i, str(value), ha="center", va="center", fontsize=7,
                      color="white" if value > matrix.max() / 2 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true digit")
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    axis.set_title(f"Chip (golden model), accuracy {evaluation.accuracy:.3f}")
    _save(figure, scratch / "confusion.png")

    figure, axis = plt.subplots(figsize=(7, 3.8))
    us = config.us_per_adc_lsb
    codes = np.concatenate([p.codes.ravel() for p in programs]) * us
    targets = np.concatenate([p.targets.ravel() for p in programs]) * us
    bins = np.arange(0, codes.max() + 2 * us, us)
    for level in level_codes * us:
        axis.hist(codes[targets == level], bins=bins, alpha=0.8)
        axis.axvline(level, color="k", lw=0.6, ls="--")
    axis.set_yscale("log")
    axis.set_xlabel("conductance read back (uS); dashed: targets")
    axis.set_ylabel("cells")
    axis.set_title("Conductances after on-chip P&V, both cores")
    _save(figure, scratch / "conductances.png")

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 6), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 2, 1]})
    steps = np.arange(spikes.shape[0])
    t, i = np.nonzero(raster)
    top.scatter(t, i, s=4, marker="|", color="k")
    top.set_ylabel("input row")
    for axis, core, name in ((middle, 0, "hidden neuron"), (bottom, 1, "output neuron")):
        for sign, colour in ((1, "tab:red"), (-1, "tab:blue")):
            t, n = np.nonzero(spikes[:, core] == sign)
            axis.scatter(t, n, s=8, marker="|", color=colour)
        axis.set_ylabel(name)
    bottom.set_ylim(-0.5, 9.5)
    bottom.set_xlabel("time step (red +1 spikes, blue -1)")
    top.set_title(f"One inference: digit {label}, predicted {predicted}")
    top.set_xlim(-0.5, steps[-1] + 0.5)
    _save(figure, scratch / "raster.png")

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for p in programs:
        pulses = np.sort(p.pulses.ravel())
        left.step(pulses, np.arange(1, pulses.size + 1) / pulses.size, where="post",
                  label=f"core {p.core} ({p.cells_failed} failed)")
    left.set_xlabel("pulses applied to the cell")
    left.set_ylabel("share of cells finished")
    left.set_title("On-chip P&V convergence")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(network.history)
    right.set_yscale("log")
    right.set_xlabel("epoch (float, then quantization-aware)")
    right.set_ylabel("training loss")
    right.grid(alpha=0.3)
    _save(figure, scratch / "convergence.png")
    print(f"plots: {', '.join(str(out / n) for n in PLOTS)}")


def _save(figure, path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(figure)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)
