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

That is `--task mlp`, the default. `--task cnn` runs the digits CNN on the MVM path (`demo_cnn`, docs/cnn.md)
and `--task rbm` the RBM's digit recovery (`demo_rbm`, docs/rbm.md), both on the golden model only, writing
what `rram-cim bench cnn` and `rram-cim bench rbm` write; the arguments that have no meaning for a task
are refused before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .cli import SEED_LIMIT, UsageError, existing_file, output_folder, seed, staged, whole
from .config import CONFIGS, REFERENCE, ChipConfig
from .progress import Bar

__all__ = ["OUTPUTS", "TASKS", "add_arguments", "check_arguments", "run"]

#: What a run leaves in --out, all from the same run: the network, the report and the plots.
PLOTS = ("confusion.png", "conductances.png", "raster.png", "convergence.png")
OUTPUTS = ("network.npz", "report.json", *PLOTS)
#: The simulator's own output (cocotb, GPI, Verilator): kept out of the demo's, here in --out.
SIMULATOR_LOG = "simulator.log"

#: The ages at which the golden model's programmed cells are evaluated again (stage 5).
RELAX_AGES = (("1 hour", 3600.0), ("1 day", 86400.0))


#: What `--task` runs: the spiking MLP (co-simulated), the CNN on the MVM path, the RBM's recovery.
TASKS = ("mlp", "cnn", "rbm")
#: Each task's chip and output folder when --config and --out are left out.
TASK_CONFIG = {"mlp": REFERENCE.name, "cnn": "neurram-like", "rbm": REFERENCE.name}
TASK_OUT = {"mlp": "out/demo", "cnn": "out/demo-cnn", "rbm": "out/demo-rbm"}
#: The MLP's defaults for the arguments that other tasks read otherwise (or refuse).
MLP_DEFAULTS = {"transport": "cosim", "steps": 16, "epochs": 60, "samples": 360}
#: The arguments only the MLP takes (the CNN and the RBM run on the golden model, neuron noise on).
MLP_ONLY = {"port": "--port", "simulator": "--simulator", "network": "--network", "neuron_noise": "--neuron-noise"}
#: The RBM's Gibbs steps (--steps) of which this share is burn-in.
RBM_STEPS, RBM_BURN_IN_SHARE = 50, 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, default="mlp",
                        help="mlp: the spiking MLP, co-simulated (default); cnn: the digits CNN on the MVM path "
                             "(docs/cnn.md); rbm: RBM digit recovery (docs/rbm.md); cnn and rbm run on the "
                             "golden model only, on " + " and ".join(f"{TASK_CONFIG[t]} ({t})" for t in TASKS[1:])
                             + " unless --config names a chip that holds them")
    parser.add_argument("--transport", choices=("cosim", "model", "fpga-sim", "serial"), default=None,
                        help="mlp: cosim also runs the RTL co-simulation (default); model: golden models only; "
                             "fpga-sim: the FPGA build co-simulated through its UART; serial: a board. "
                             "cnn, rbm: model only")
    parser.add_argument("--port", default=None, help="the board's serial port (serial; default: found by USB ID)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default=None,
                        help="co-simulation simulator (default: Verilator when installed)")
    parser.add_argument("--samples", type=whole(1), default=None,
                        help="test digits run on the chip (default 360: all the held-out digits, as the models; "
                             "rbm: the digits corrupted and recovered)")
    parser.add_argument("--seed", type=seed, default=1,
                        help=f"data split, training and device seed (0 to {SEED_LIMIT - 1}); cnn: the chip's only")
    parser.add_argument("--training-seed", type=seed, default=None,
                        help="cnn: data split, initial weights and training noise (default 0, as bench cnn)")
    from .host.training import STEPS_MAX
    parser.add_argument("--steps", type=whole(1, STEPS_MAX + 1), default=None,
                        help=f"mlp: input time steps per inference (1 to {STEPS_MAX}, default 16); rbm: Gibbs steps "
                             f"per recovery (default {RBM_STEPS}, a fifth of them burn-in); not for cnn")
    parser.add_argument("--epochs", type=whole(1), default=None,
                        help="mlp: float training epochs, then half as many QAT (default 60); cnn: float epochs, "
                             "then two thirds as many noise-aware (default 60); rbm: CD epochs (default 200)")
    parser.add_argument("--neuron-noise", action="store_true",
                        help="neurons with kT/C noise and comparator offsets (mlp; default off; cnn and rbm "
                             "always have them)")
    parser.add_argument("--network", type=existing_file, default=None,
                        help="load a trained network (.npz, as the demo saves it) instead of training (mlp)")
    parser.add_argument("--out", type=output_folder, default=None,
                        help="folder for the plots and report.json (and mlp's network.npz); default "
                             + ", ".join(f"{folder} ({task})" for task, folder in TASK_OUT.items()))
    # The chip is the task's own unless --config names one (`main` adds --config with the reference's name).
    parser.set_defaults(config=None)


def _resolve_defaults(args: argparse.Namespace) -> None:
    """The task's values for the arguments left out (idempotent)."""
    task = getattr(args, "task", "mlp")
    args.task = task
    if getattr(args, "config", None) is None:
        args.config = TASK_CONFIG[task]
    if args.out is None:
        args.out = pathlib.Path(TASK_OUT[task])
    if task == "mlp":
        for name, value in MLP_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)


def _check_task(args: argparse.Namespace) -> None:
    """Refuse, in one line, the arguments that have no meaning for a CNN or RBM run; check that its network
    fits the chip. Nothing is trained or written before."""
    task = args.task
    for name, flag in MLP_ONLY.items():
        if getattr(args, name):
            raise UsageError(f"{flag} is for --task mlp, not {task}" + (
                f" ({task} always runs with neuron noise on)" if name == "neuron_noise" else ""))
    if args.transport not in (None, "model"):
        raise UsageError(f"--transport {args.transport} is for --task mlp; {task} runs on the golden model only "
                         f"(--transport model)")
    args.transport = "model"
    if task == "cnn":
        if args.steps is not None:
            raise UsageError("--steps is for --task mlp (time steps) and rbm (Gibbs steps); cnn runs one MVM per "
                             "image patch")
        from . import demo_cnn
        problem = demo_cnn.check_fits(_cnn_settings(args), CONFIGS[args.config])
    else:
        if args.steps is not None and args.steps < 2:
            raise UsageError(f"--steps {args.steps}: a recovery counts samples after burn-in: at least 2 Gibbs steps")
        from . import demo_rbm
        problem = demo_rbm.check_fits(CONFIGS[args.config])
    if problem:
        raise UsageError(f"--config {args.config}: {problem}")


def check_arguments(args: argparse.Namespace) -> None:
    """What the parser cannot check one argument at a time, before any work: raises UsageError for
    arguments that do not go together, SystemExit for a machine that cannot run the request."""
    _resolve_defaults(args)
    if args.training_seed is not None and args.task != "cnn":
        raise UsageError(f"--training-seed is for --task cnn; {args.task}'s --seed seeds its data split and "
                         f"training too")
    if args.task != "mlp":
        _check_task(args)
        return
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
    predictions, events, spikes, rows, right = [], [], 0, 0, 0
    for i, raster in enumerate(rasters):
        scores, run = chip.classify(mapping, raster)
        predictions.append(int(scores.argmax()))
        right += predictions[-1] == labels[i]
        spikes += run.spikes
        rows += run.row_events
        if keep_events:
            events.append(run.events)
        if on_run:
            on_run(i, run)
        bar.step(f"accuracy so far {right / (i + 1):.3f}")
    n = max(len(rasters), 1)
    return Evaluation(name, np.array(predictions), np.asarray(labels), events, spikes / n, rows / n)


def run(args: argparse.Namespace) -> int:
    """The demo (arguments checked by `check_arguments`); `--out` gets its outputs only if it ends well."""
    _resolve_defaults(args)
    out = pathlib.Path(args.out)
    if args.task == "cnn":
        from .demo_cnn import OUTPUTS as CNN_OUTPUTS
        with staged(out, CNN_OUTPUTS) as scratch:
            return _run_cnn(args, out, scratch)
    if args.task == "rbm":
        from .demo_rbm import OUTPUTS as RBM_OUTPUTS
        with staged(out, RBM_OUTPUTS) as scratch:
            return _run_rbm(args, out, scratch)
    # A run without a simulator leaves no simulator log, so an older one would not describe this run.
    outputs = OUTPUTS + ((SIMULATOR_LOG,) if args.transport in ("model", "serial") else ())
    with staged(out, outputs) as scratch:
        return _run(args, out, scratch)


def _cnn_settings(args: argparse.Namespace):
    """The CNN of `host.cnn` with --training-seed (CNNSettings' own 0 when left out, as bench cnn); --epochs
    float epochs, then noise-aware ones in CNNSettings' proportion (its own 60 and 40 when left out)."""
    from dataclasses import replace

    from .host.cnn import CNNSettings
    settings = CNNSettings() if args.training_seed is None else CNNSettings(seed=args.training_seed)
    if args.epochs is not None:
        aware = max(1, round(args.epochs * settings.aware_epochs / settings.epochs))
        settings = replace(settings, epochs=args.epochs, aware_epochs=aware)
    return settings


def _run_cnn(args: argparse.Namespace, out: pathlib.Path, scratch: pathlib.Path) -> int:
    """`--task cnn`: train, map, program and score (`demo_cnn`), as `rram-cim bench cnn` does."""
    import json

    from . import demo_cnn
    from .host.training import load_digits
    config = CONFIGS[args.config]
    settings = _cnn_settings(args)
    print(f"rram-cim demo --task cnn: chip {config.name}, {config.cores} cores of {config.rows}x{config.columns} "
          f"cells; conv {settings.channels} channels, {settings.epochs} + {settings.aware_epochs} noise-aware "
          f"epochs; training seed {settings.seed} (data split, training), chip seed {args.seed}", flush=True)
    report = demo_cnn.evaluate(load_digits(settings.seed), settings, config, args.seed, args.samples)
    report = {"task": "cnn", **report}
    (scratch / "report.json").write_text(json.dumps(report, indent=1, default=float))
    demo_cnn.print_summary(report, config.name, out, out / demo_cnn.plot(report, scratch).name)
    return 0


def _run_rbm(args: argparse.Namespace, out: pathlib.Path, scratch: pathlib.Path) -> int:
    """`--task rbm`: train, program, corrupt and recover (`demo_rbm`), as `rram-cim bench rbm` does."""
    import json

    from . import demo_rbm
    config = CONFIGS[args.config]
    steps = args.steps or RBM_STEPS
    run = demo_rbm.Recovery(samples=args.samples or demo_rbm.Recovery.samples, steps=steps,
                            burn_in=steps // RBM_BURN_IN_SHARE, epochs=args.epochs or demo_rbm.Recovery.epochs,
                            seed=args.seed)
    print(f"rram-cim demo --task rbm: chip {config.name}, {config.cores} cores of {config.rows}x{config.columns} "
          f"cells; {run.epochs} CD epochs, {run.steps} Gibbs steps ({run.burn_in} burn-in); seed {args.seed}",
          flush=True)
    report, grid = demo_rbm.evaluate(config, run)
    report = {"task": "rbm", **report}
    (scratch / "report.json").write_text(json.dumps(report, indent=1, default=float))
    demo_rbm.print_summary(report, out, out / demo_rbm.save_grid(scratch, grid).name)
    return 0


@dataclass
class Trained:
    """Stage 1: the data, the conductance levels and their P&V recipes, and the network (float and
    quantized) with the settings it was trained with."""
    data: object
    level_codes: np.ndarray
    level_us: np.ndarray
    recipes: object
    floating: object
    quantized: object
    settings: object


@dataclass
class Compiled:
    """Stage 2: the network mapped onto the cores, and the test digits as input rasters."""
    mapping: object
    rasters: list
    labels: np.ndarray


@dataclass
class ModelRuns:
    """Stage 3: the evaluations on the golden models; the P&V-programmed model chip (aged later), its
    programming results, its energy meter and the first inference's spikes (for the raster plot)."""
    evaluations: dict[str, Evaluation]
    chip: object
    programs: list
    meter: object
    first_spikes: np.ndarray


def _run(args: argparse.Namespace, out: pathlib.Path, scratch: pathlib.Path) -> int:
    """The demo, writing into `scratch` what will be in `out` once it ends well (`run`)."""
    from .demo_report import build_report, plot, print_report, write_report
    config: ChipConfig = CONFIGS[getattr(args, "config", REFERENCE.name)]
    started = time.perf_counter()
    timings: dict[str, float] = {}
    print(f"rram-cim demo: chip {config.name}, {config.cores} cores of {config.rows}x{config.columns} cells, "
          f"{config.neurons} neurons each; seed {args.seed}")
    trained = _train_or_load(args, config, out, scratch, timings)
    compiled = _compile(config, trained)
    models = _evaluate_on_models(args, config, trained, compiled, timings)
    samples = min(args.samples, len(compiled.labels))
    cosim = _program_and_run_on_chip(args, config, trained, compiled, models, samples, out, timings)
    _relax(models, compiled)
    report = build_report(args, config, trained, compiled, models, cosim, samples, timings)
    print_report(report, models.evaluations, cosim)
    plot(scratch, out, trained, compiled, models, cosim, config)
    write_report(scratch / "report.json", report, started)
    print(f"report: {out / 'report.json'}; total {report['timings_s']['total_s']:.0f} s")
    if cosim and cosim["identical"] is not None and cosim["identical"] != samples:
        print("FAILED: the co-simulation disagreed with the golden model")
        return 1
    return 0


def _train_or_load(args, config: ChipConfig, out: pathlib.Path, scratch: pathlib.Path, timings) -> Trained:
    """Stage 1: the data split, the device spread at the P&V levels, and the network trained with it (or
    loaded from --network, copied beside the report)."""
    from .host.recipes import HOLDING, level_recipes
    from .host.training import (TrainSettings, device_spread_us, load_digits, load_networks, save_networks,
                                train)
    from .models.recipes import LEVELS
    data = load_digits(args.seed)
    print(f"data: scikit-learn digits, {len(data.train_y)} training and {len(data.test_y)} test images (8x8)")
    level_codes = np.array(LEVELS)
    level_us = level_codes * config.us_per_adc_lsb
    recipes = level_recipes(config, level_codes, **HOLDING)      # averaged, confirmed verifies, widened windows
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
    return Trained(data, level_codes, level_us, recipes, floating, quantized, settings)


def _compile(config: ChipConfig, trained: Trained) -> Compiled:
    """Stage 2: the network onto the cores (`host.compiler`), the test digits rate-coded."""
    from .host.compiler import CompileError, compile_network
    from .host.training import rate_code
    settings, level_us = trained.settings, trained.level_us
    try:
        mapping = compile_network(trained.quantized.layers(), trained.level_codes, config, settings.threshold_code,
                                  settings.v_read_code)
    except CompileError as error:
        raise SystemExit(f"rram-cim demo: the network does not fit the {config.name} chip: {error}") from None
    print(f"compiled: layer 0 on core 0 (64 inputs -> {settings.hidden}), layer 1 on core 1 "
          f"({settings.hidden} -> 10); {len(trained.level_codes)} levels {level_us[0]:.0f}-{level_us[-1]:.0f} uS; "
          f"threshold {settings.threshold_code} codes, read {settings.v_read_code * config.bl_volts_per_lsb:.3f} V, "
          f"ADC-mode neurons, {settings.steps} steps + {mapping.flush_steps} flush")
    return Compiled(mapping, [rate_code(x, settings.steps) for x in trained.data.test_x], trained.data.test_y)


def _evaluate_on_models(args, config: ChipConfig, trained: Trained, compiled: Compiled, timings) -> ModelRuns:
    """Stage 3: the golden models: float levels on ideal cells, quantized levels on ideal cells, and every
    cell programmed by P&V on the device model, with each inference's energy on the meter."""
    from .host.chip import Chip, ModelTransport
    from .models.energy import EnergyMeter
    from .models.neurons import NeuronParams
    mapping, rasters, labels = compiled.mapping, compiled.rasters, compiled.labels
    t = time.perf_counter()
    float_model = ModelTransport(config, args.seed, neuron_noise=args.neuron_noise)
    for core in range(len(mapping.targets)):
        float_model.set_conductances(core, _float_conductances(trained.floating, core, config, trained.level_us[0]))
    float_chip = Chip(float_model, config)
    float_chip.configure(mapping)
    evaluations = {"float": _evaluate("float (ideal cells)", float_chip, mapping, rasters, labels)}
    ideal = Chip(ModelTransport(config, args.seed, neuron_noise=args.neuron_noise, ideal=True), config)
    ideal.load(mapping)
    evaluations["quantized"] = _evaluate("quantized (ideal cells)", ideal, mapping, rasters, labels)

    model_transport = ModelTransport(config, args.seed, neuron_noise=args.neuron_noise)
    model_chip = Chip(model_transport, config)
    model_programs = model_chip.load(mapping, trained.recipes, cell_pulses=True)
    meter = EnergyMeter()
    layers = trained.quantized.layers()
    layer_neurons = [layer.neurons for layer in layers]
    neuron = NeuronParams()
    v_read = mapping.v_read_code * config.bl_volts_per_lsb
    v_threshold = trained.settings.threshold_code * config.threshold_volts_per_lsb
    first_spikes = {}

    def account(i, result):
        last = model_transport.last
        meter.inference(last.routed, [core.g_us for core in model_transport.macro.cores], v_read, layer_neurons,
                        config.neurons, neuron.c_sample_ff, result.spikes, layer_inputs=[l.inputs for l in layers],
                        c_int_ff=neuron.c_int_ff, v_threshold=v_threshold, dac_bits=config.dac_bits)
        if i == 0:
            first_spikes["spikes"] = last.spikes.copy()
    evaluations["chip_model"] = _evaluate("chip (golden model)", model_chip, mapping, rasters, labels,
                                          keep_events=True, on_run=account)
    timings["models_s"] = time.perf_counter() - t
    return ModelRuns(evaluations, model_chip, model_programs, meter, first_spikes["spikes"])


def _program_and_run_on_chip(args, config: ChipConfig, trained: Trained, compiled: Compiled, models: ModelRuns,
                             samples: int, out: pathlib.Path, timings) -> dict | None:
    """Stage 4: program and run the first `samples` digits through --transport (none for `model`)."""
    if args.transport == "model":
        return None
    t = time.perf_counter()
    log = out / SIMULATOR_LOG
    try:
        with _child_output_to(log if args.transport != "serial" else None):
            cosim = _on_chip(args.transport, config, compiled.mapping, trained.recipes, compiled.rasters[:samples],
                             compiled.labels[:samples], args, models.evaluations["chip_model"].events[:samples])
    except (RuntimeError, OSError) as error:      # LinkError, CosimError, a failed simulator build
        where = f"; the simulator's output is in {log}" if args.transport != "serial" else ""
        raise SystemExit(f"rram-cim demo: {args.transport} failed: {error}{where}; "
                         f"{out} keeps the previous run's outputs") from None
    timings["cosim_s"] = time.perf_counter() - t
    return cosim


def _relax(models: ModelRuns, compiled: Compiled) -> None:
    """Stage 5: the golden model's programmed cells after 1 hour and 1 day of relaxation."""
    aged = 0.0
    for label, age in RELAX_AGES:
        models.chip.relax(age - aged)
        aged = age
        models.evaluations[f"relaxed {label}"] = _evaluate(f"chip after {label}", models.chip, compiled.mapping,
                                                           compiled.rasters, compiled.labels)


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
        programs = chip.load(mapping, recipes, progress=programmed, cell_pulses=True)
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
