"""The chip from the host: one `Chip` class over interchangeable transports.

    chip = Chip(ModelTransport(seed=1))                     # the golden models, no simulator
    chip = Chip(CosimTransport("verilator", seed=1))        # the generated Verilog in co-simulation (sim/)
    results = chip.load(mapping)                            # program every cell through P&V, read back
    run = chip.infer(mapping.host_steps(raster))            # spiking inference: events and counters
    chip.classify(mapping, raster)                          # the output neurons' signed spike counts

A transport that moves SPI frames (`exchange`, optionally `idle`) is driven through the register map by
the same host code that drives a board (`Programmer`, `InferenceRunner`). `ModelTransport` answers at
the transaction level instead, with the models the RTL is verified against (`models.pv`'s P&V, the
inference golden model on the same `AnalogMacro`), so with equal seeds and the neuron noise off a model
run and a co-simulated run give the same pulses, codes and spikes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..config import REFERENCE, ChipConfig, read_limit_code, read_limit_volts
from ..models.device import ModelInputError
from ..models.inference import InferenceModel, InferenceResult
from ..models.macro import AnalogMacro, NeuronCodes, check_trims
from ..models.mvm import MVMModel
from ..models.stochastic import NOISE_MAX, StochasticLines
from .calibration import OffsetCalibration, calibrate_offsets
from ..models.mvm import check_request as check_mvm_request
from ..models.pv import PVSettings, adc_codes, averaged_codes, program_and_verify
from ..protocol import Conversion, Direction, NeuronReset, StatusBit
from .compiler import NetworkMapping
from ..models.macro import NeuronMode
from .inference import InferenceRun, InferenceRunner, check_configuration, check_host_steps
from .mvm_runner import MVMRunner
from .programming import (Programmer, ProgrammingError, ProgramResult, cell_windows, check_progress, check_reads,
                          check_request, check_selection, check_targets, target_bits_of)
from .recipes import level_recipes
from .registers import ChipError, RegisterClient, check_identity, check_seconds
from .registers_gen import TABLE

__all__ = ["Chip", "ModelTransport", "INFERENCE_COUNTERS"]

Progress = Callable[[int, int], None]
#: The inference counters (NEURON registers) of the last run, as `Chip.counters()` names them.
INFERENCE_COUNTERS = ("neuron_step", "neuron_row_events", "neuron_spikes", "neuron_dropped")
#: Status polls while an engine runs, in system clock cycles (~170 us at 12 MHz): a poll costs a frame.
POLL_CYCLES = 2000


class ModelTransport:
    """The chip as its golden models: P&V by `models.pv.program_and_verify` on the cells of an
    `AnalogMacro`, inference by `models.inference.InferenceModel` on the same macro.

    `ideal=True` programs every cell exactly to its target (no device physics): the quantized software
    model through the chip's own inference rules."""

    def __init__(self, config: ChipConfig = REFERENCE, seed: int = 0, neuron_noise: bool = False,
                 ideal: bool = False):
        self.config = config
        self.macro = AnalogMacro(config, seed, neuron_noise=neuron_noise)
        self.ideal = ideal
        self._inference: tuple[NeuronCodes, int, bytes] | None = None
        #: The last inference's full result (every neuron's spikes, routed rows), which a chip cannot show.
        self.last: InferenceResult | None = None
        self._status = StatusBit(0)
        self._counters = dict.fromkeys(INFERENCE_COUNTERS, 0)
        self._mvm_counters: dict[str, int] = {}
        #: Decide mode's state, as the chip's mvm_bias and mvm_lfsr windows and MVM.noise hold it.
        self._stochastic = StochasticLines.reset(config.mvm_lines)

    def program(self, core: int, targets, recipes, first_row: int = 0, read_back: bool = True,
                progress: Progress | None = None, cell_pulses: bool = False) -> ProgramResult:
        config = self.config
        targets, recipes, shared = check_request(config, core, targets, recipes, first_row)
        rows = slice(first_row, first_row + targets.shape[0])
        array = self.macro.cores[core]
        # The chip verifies at its drivers' read code, whatever v_read a recipe names.
        v_read = read_limit_volts(config)
        per_level = isinstance(recipes, dict)
        settings = ({code: replace(r, v_read=v_read) for code, r in recipes.items()} if per_level
                    else replace(recipes, v_read=v_read))
        full = np.full(array.shape, -1, dtype=np.int64)
        full[rows] = targets
        if self.ideal:
            array.g_us[rows] = targets * config.us_per_adc_lsb
            pulses, passed, failed, total = np.zeros(targets.shape, np.int64), targets.size, np.zeros(full.shape, bool), 0
        else:
            outcome = program_and_verify(array, full, settings, config)
            pulses, passed, failed, total = (outcome.pulses[rows], int(outcome.passed.sum()), outcome.failed,
                                             len(outcome.log))
        if progress:
            progress(targets.size, targets.size)
        windows = cell_windows(targets, recipes)
        logged = [(core, int(r), int(c)) for r, c in zip(*np.nonzero(failed))][:config.failed_log_depth]
        reads = shared.verify_reads
        codes = self.read_codes(core, first_row, targets.shape[0], reads) if read_back else targets.copy()
        self._status |= StatusBit.PV_DONE
        return ProgramResult(core=core, targets=targets, pulses=pulses if cell_pulses else None, codes=codes,
                             window=windows,
                             cells_done=passed, cells_failed=int(failed.sum()), pulses_total=total,
                             failed_cells=logged, us_per_code=config.us_per_adc_lsb, verify_reads=reads,
                             true_codes=adc_codes(array.g_us[rows], config), target_bits=target_bits_of(config, recipes))

    def read_codes(self, core: int, first_row: int = 0, count: int | None = None, reads: int = 1) -> np.ndarray:
        config = self.config
        count = check_selection(config, core, first_row, count)
        check_reads(config, reads)
        chosen = np.zeros((config.rows, config.columns), bool)
        chosen[first_row:first_row + count] = True
        return averaged_codes(self.macro.cores[core], read_limit_volts(config), chosen, reads,
                              config)[first_row:first_row + count]

    def configure(self, codes: NeuronCodes, v_read_code: int, routing: bytes) -> None:
        check_configuration(self.config, TABLE, codes, v_read_code, routing)
        self._inference = (codes, v_read_code, bytes(routing))

    def run(self, host_steps) -> InferenceRun:
        if self._inference is None:
            raise ChipError("inference is not configured: call configure() first")
        check_host_steps(host_steps)
        codes, v_read_code, routing = self._inference
        self.last = InferenceModel(self.macro, routing, codes, v_read_code).run(host_steps)
        run = InferenceRun(events=self.last.events, steps=len(host_steps), row_events=self.last.row_events,
                           spikes=int(np.abs(self.last.spikes).sum()), dropped=self.last.dropped,
                           warnings=["route_drop"] if self.last.dropped else [])
        self._counters = dict(zip(INFERENCE_COUNTERS, (run.steps, run.row_events, run.spikes, run.dropped)))
        self._status |= StatusBit.INFER_DONE
        return run

    def mvm(self, core, x, direction, in_bits, out_bits, conversion, threshold_code, v_read_code,
            decide=False) -> np.ndarray:
        # The neurons as the chip's MVM sequencer presents them: the thresholds, ADC mode (no leak).
        codes = NeuronCodes(thresh_pos=threshold_code, thresh_neg=threshold_code, mode=NeuronMode.ADC,
                            reset=NeuronReset.SUBTRACT)
        result = MVMModel(self.macro, codes, v_read_code).run(core, x, direction, in_bits, out_bits, conversion,
                                                              self._stochastic if decide else None)
        self._mvm_counters = {"mvm_samples": result.samples, "mvm_steps": result.conversion_steps}
        self._status |= StatusBit.MVM_DONE
        return result.outputs

    def set_trims(self, core: int, codes) -> None:
        self.macro.set_trims(core, codes)

    def set_stochastic(self, biases, seeds, draws, magnitude) -> None:
        self._stochastic = StochasticLines(np.array(biases, dtype=np.int64), np.array(seeds, dtype=np.uint64),
                                           draws, magnitude)

    def lfsr_states(self) -> np.ndarray:
        return self._stochastic.states.copy()

    def mvm_counters(self) -> dict[str, int]:
        return dict(self._mvm_counters)

    def status(self) -> StatusBit:
        """The model is never busy and raises instead of flagging errors."""
        return self._status

    def errors(self) -> list[str]:
        return []

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def set_conductances(self, core: int, g_us: np.ndarray) -> None:
        """Put conductances straight onto a core's cells (the float model; no chip can do this)."""
        g_us = np.asarray(g_us, dtype=float)
        array = self.macro.cores[core]
        if g_us.shape != array.shape or np.any(g_us <= 0):
            raise ModelInputError(f"conductances must be positive, shaped {array.shape}")
        array.g_us[:] = g_us

    def relax(self, seconds: float) -> None:
        seconds = check_seconds("seconds", seconds)
        for array in self.macro.cores:
            array.relax(seconds)


class _FrameLink:
    """The register-level host code over a transport that moves SPI frames."""

    def __init__(self, transport, config: ChipConfig, poll_seconds: float):
        self.transport = transport
        self.regs = RegisterClient(transport, TABLE)
        self.config = config
        self.poll_seconds = poll_seconds
        self.runner = InferenceRunner(self.regs, config)
        self.mvm_runner = MVMRunner(self.regs, config, poll_seconds)

    def _programmer(self, progress: Progress | None) -> Programmer:
        return Programmer(self.regs, self.config, poll_seconds=self.poll_seconds, progress=progress)

    def program(self, core, targets, recipes, first_row=0, read_back=True, progress=None,
                cell_pulses=False) -> ProgramResult:
        return self._programmer(progress).program(core, targets, recipes, first_row, read_back, cell_pulses)

    def read_codes(self, core, first_row=0, count=None, reads=1) -> np.ndarray:
        return self._programmer(None).read_codes(core, first_row, count, reads)

    def configure(self, codes, v_read_code, routing) -> None:
        self.runner.configure(codes, v_read_code, routing)

    def run(self, host_steps) -> InferenceRun:
        return self.runner.run(host_steps)

    def mvm(self, core, x, direction, in_bits, out_bits, conversion, threshold_code, v_read_code,
            decide=False) -> np.ndarray:
        return self.mvm_runner.run(core, x, Direction[direction.upper()], in_bits, out_bits,
                                   Conversion[conversion.upper()], threshold_code, v_read_code, decide)

    def set_trims(self, core: int, codes) -> None:
        self.mvm_runner.set_trims(core, codes)

    def set_stochastic(self, biases, seeds, draws, magnitude) -> None:
        self.mvm_runner.set_stochastic(biases, seeds, draws, magnitude)

    def lfsr_states(self) -> np.ndarray:
        return self.mvm_runner.lfsr_states()

    def mvm_counters(self) -> dict[str, int]:
        return self.mvm_runner.counters()

    def status(self) -> StatusBit:
        check_identity(self.regs, self.config)
        return StatusBit(self.regs.status() & sum(bit.value for bit in StatusBit))

    def errors(self) -> list[str]:
        check_identity(self.regs, self.config)
        return self.regs.errors()

    def counters(self) -> dict[str, int]:
        check_identity(self.regs, self.config)
        return {name: self.regs.read(name) for name in INFERENCE_COUNTERS}

    def relax(self, seconds: float) -> None:
        relax = getattr(self.transport, "relax", None)
        if relax is None:
            raise ChipError("this transport is real silicon (or its emulation): time cannot be skipped")
        relax(seconds)


class Chip:
    """Program, read back, run inference and read counters, whatever the chip is behind `transport`.

    Every argument is checked before a frame goes out (a TypeError or ValueError saying what would be
    right). Over a frame transport the host then checks, once, that the chip is the one `config` describes
    (CHIP.id, the register map version, the geometry: `registers.check_identity`) before its first
    request, and refuses counters no run could produce."""

    def __init__(self, transport, config: ChipConfig = REFERENCE, poll_seconds: float | None = None):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a ChipConfig, not {type(config).__name__}")
        if poll_seconds is not None:
            poll_seconds = check_seconds("poll_seconds", poll_seconds, positive=True)
        self.config = config
        self.transport = transport
        if isinstance(transport, ModelTransport):
            if transport.config != config:
                raise ValueError(f"the model is a {transport.config.name} chip, not {config.name}")
            self._link = transport
        elif callable(getattr(transport, "exchange", None)):
            self._link = _FrameLink(transport, config, poll_seconds or POLL_CYCLES / config.sys_clk_hz)
        else:
            raise TypeError("a transport is a ModelTransport or moves SPI frames (has exchange(frame))")

    def identify(self) -> None:
        """Check now that the chip is the one the config describes (done anyway before the first request)."""
        if isinstance(self._link, _FrameLink):
            check_identity(self._link.regs, self.config)

    # ---- programming ------------------------------------------------------------------------------------
    def program(self, core: int, targets, recipes: PVSettings | dict | None = None, first_row: int = 0,
                progress: Progress | None = None, cell_pulses: bool = False) -> ProgramResult:
        """Program rows `first_row`.. of `core` to ADC-code `targets` (rows x columns) through the P&V
        engine, then read every cell back through the sense path. `recipes` defaults to the host's
        per-level IGVVA table (`host.recipes`). `cell_pulses`: also read each cell's pulse count
        (`ProgramResult.pulses`; by default only the counters and the failed-cell log)."""
        check_progress(progress)
        if not isinstance(cell_pulses, (bool, np.bool_)):
            raise TypeError(f"cell_pulses must be True or False, not {type(cell_pulses).__name__} {cell_pulses!r}")
        check_selection(self.config, core, first_row, 1)
        if recipes is None:
            recipes = level_recipes(self.config, np.unique(check_targets(self.config, targets)))
        return self._link.program(core, targets, recipes, first_row, True, progress, bool(cell_pulses))

    def read_codes(self, core: int, first_row: int = 0, count: int | None = None, reads: int = 1) -> np.ndarray:
        """ADC codes of rows `first_row`.. of `core` through the sense path, each the mean of `reads` senses
        (1, 2, 4 or 8) as the P&V engine's verify averages them."""
        return self._link.read_codes(core, first_row, count, reads)

    def read_conductances(self, core: int) -> np.ndarray:
        """Every cell of `core` as the ADC sees it, in uS."""
        return self.read_codes(core) * self.config.us_per_adc_lsb

    def load(self, mapping: NetworkMapping, recipes: dict | None = None,
             progress: Callable[[int, int, int], None] | None = None, cell_pulses: bool = False) -> list[ProgramResult]:
        """Program every core of a compiled network and configure its neurons and routing (`cell_pulses` as
        for `program`)."""
        self._check_mapping(mapping)
        check_progress(progress)
        if recipes is not None and not isinstance(recipes, (dict, PVSettings)):
            raise TypeError(f"recipes must be a PVSettings, a dict {{target code: PVSettings}} or None, "
                            f"not {type(recipes).__name__}")
        recipes = recipes or level_recipes(self.config, mapping.level_codes)
        for core, targets in enumerate(mapping.targets):       # every core's request, before the first frame
            check_request(self.config, core, targets, recipes, 0)
        self._check_neurons(mapping)
        results = []
        for core, targets in enumerate(mapping.targets):
            report = (lambda done, total, core=core: progress(core, done, total)) if progress else None
            results.append(self._link.program(core, targets, recipes, 0, True, report, bool(cell_pulses)))
        self.configure(mapping)
        return results

    # ---- inference --------------------------------------------------------------------------------------
    def _check_mapping(self, mapping) -> None:
        if not isinstance(mapping, NetworkMapping):
            raise TypeError(f"mapping must be a NetworkMapping (host.compiler.compile_network), "
                            f"not {type(mapping).__name__}")
        if mapping.config != self.config:
            raise ProgrammingError(f"the network was compiled for {mapping.config.name}, not {self.config.name}")

    def _check_neurons(self, mapping: NetworkMapping) -> None:
        """What the chip would refuse at the start of a run, refused here instead."""
        pages = check_configuration(self.config, TABLE, mapping.codes, mapping.v_read_code, mapping.routing)
        for page, codes in enumerate(pages):
            where = f"core {page}: " if len(pages) > 1 else ""
            if codes.thresh_pos < 1 or codes.thresh_neg < 1:
                raise ValueError(f"{where}neuron thresholds must be at least one code, not {codes.thresh_pos} "
                                 f"and {codes.thresh_neg}")
            if codes.mode not in tuple(NeuronMode):
                raise ValueError(f"{where}neuron mode {codes.mode} is not one of {[int(m) for m in NeuronMode]}")
        if mapping.v_read_code > read_limit_code(self.config):
            raise ValueError(f"read code {mapping.v_read_code} is above the chip's read limit "
                             f"{read_limit_code(self.config)}")

    def configure(self, mapping: NetworkMapping) -> None:
        self._check_mapping(mapping)
        self._check_neurons(mapping)
        self._link.configure(mapping.codes, mapping.v_read_code, mapping.routing)

    def infer(self, host_steps: list[list[tuple[int, int]]]) -> InferenceRun:
        """One inference: the input events of each time step in, the output events and counters out."""
        check_host_steps(host_steps, self.config)
        return self._link.run(host_steps)

    def classify(self, mapping: NetworkMapping, raster: np.ndarray) -> tuple[np.ndarray, InferenceRun]:
        """Run one input raster (steps x inputs) and return the outputs' signed spike counts."""
        self._check_mapping(mapping)
        raster = np.asarray(raster)
        if raster.dtype != np.bool_ and not (np.issubdtype(raster.dtype, np.number)
                                             and np.all(np.isin(raster, (0, 1)))):
            raise ValueError("the raster holds spikes: booleans, or numbers that are 0 or 1")
        run = self.infer(mapping.host_steps(raster))
        return mapping.scores(run.events), run

    # ---- matrix-vector multiplication (docs/mvm.md) ---------------------------------------------------------
    def mvm(self, core: int, x, direction: str = "forward", in_bits: int = 1, out_bits: int = 1,
            conversion: str = "count", threshold_code: int = 1, v_read_code: int | None = None,
            decide: bool = False) -> np.ndarray:
        """One MVM on `core`: signed integer inputs `x` (|x| < 2^in_bits; one per row forward, one per column
        pair backward) in, signed outputs (|y| < 2^out_bits; one per column pair forward, one per row
        backward) out, in units of `threshold_code` on the neurons' membranes. `v_read_code` defaults to the
        read-disturb limit. `decide`: each output line's stochastic neuron decides instead, 0 or 1
        (`set_stochastic`, docs/mvm.md). Bad requests are refused before anything is sent."""
        v_read_code = read_limit_code(self.config) if v_read_code is None else v_read_code
        check_mvm_request(self.config, core, x, direction, in_bits, out_bits, conversion)
        if not isinstance(decide, (bool, np.bool_)):
            raise TypeError(f"decide must be True or False, not {type(decide).__name__} {decide!r}")
        if decide:
            self._check_stochastic_build("mvm(decide=True)")
        for name, value, top in (("threshold_code", threshold_code, 65535),
                                 ("v_read_code", v_read_code, read_limit_code(self.config))):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= top:
                raise ValueError(f"{name} must be an integer from 1 to {top}, not {value!r}")
        return self._link.mvm(core, x, direction, in_bits, out_bits, conversion, threshold_code, v_read_code,
                              bool(decide))

    def mvm_counters(self) -> dict[str, int]:
        """What the last MVM cost: `mvm_samples` (integrations) and `mvm_steps` (conversion steps), and over a
        chip `mvm_cycles` (system cycles, the MVM registers); empty before the first MVM."""
        return self._link.mvm_counters()

    def set_trims(self, core: int, codes) -> None:
        """Each neuron's comparator offset trim on `core` (signed threshold LSBs, `models.macro.TRIM_RANGE`)."""
        if isinstance(core, bool) or not isinstance(core, (int, np.integer)) or not 0 <= core < self.config.cores:
            raise ValueError(f"core must be 0 to {self.config.cores - 1}, not {core!r}")
        check_trims(self.config, codes)
        self._link.set_trims(core, codes)

    def _check_stochastic_build(self, what: str) -> None:
        if not self.config.mvm_decide:
            raise ChipError(f"{what}: the {self.config.name} build has no stochastic neurons (ChipConfig.mvm "
                            f"{self.config.mvm}, mvm_stochastic {self.config.mvm_stochastic})")

    def set_stochastic(self, biases, seeds, draws: int = 8, magnitude: int = 2) -> None:
        """Decide mode's neurons (docs/mvm.md): a signed bias in output LSBs (|b| < 2^15) and a non-zero
        32-bit LFSR seed per output line (`config.mvm_lines` of each: line i is output i of either
        direction), K `draws` of +-`magnitude` LSBs per decision (1-15 each)."""
        self._check_stochastic_build("set_stochastic")
        lines = self.config.mvm_lines
        biases, seeds = np.asarray(biases), np.asarray(seeds)
        if biases.dtype.kind not in "iu" or biases.shape != (lines,) or np.any(np.abs(biases.astype(np.int64)) > 0x7FFF):
            raise ValueError(f"biases are {lines} integers within +-32767 (one per output line), not an array of "
                             f"{biases.shape} {biases.dtype}")
        if (seeds.dtype.kind not in "iu" or seeds.shape != (lines,) or np.any(seeds == 0)
                or np.any(seeds.astype(np.uint64) >> np.uint64(32)) or np.any(seeds < 0)):
            raise ValueError(f"seeds are {lines} non-zero 32-bit integers (one LFSR per output line; zero never "
                             f"leaves zero), not an array of {seeds.shape} {seeds.dtype}")
        for name, value in (("draws", draws), ("magnitude", magnitude)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= NOISE_MAX:
                raise ValueError(f"{name} must be an integer from 1 to {NOISE_MAX}, not {value!r}")
        self._link.set_stochastic(biases.astype(np.int64), seeds.astype(np.uint64), int(draws), int(magnitude))

    def lfsr_states(self) -> np.ndarray:
        """Each output line's LFSR state (uint64 holding 32 bits), as seeded and stepped by decide MVMs."""
        self._check_stochastic_build("lfsr_states")
        return self._link.lfsr_states()

    def calibrate(self, core: int, trials: int = 64, tolerance: float = 0.1, seed: int = 0) -> OffsetCalibration:
        """Trim each neuron of `core` until random +-1 inputs find its comparators unbiased (host/calibration.py);
        the trims stay written."""
        return calibrate_offsets(self, core, self.config, trials, tolerance, seed)

    # ---- status and counters --------------------------------------------------------------------------------
    def status(self) -> StatusBit:
        """The status flags (BUSY, PV_DONE, INFER_DONE, MVM_DONE, ERROR, OUT_READY)."""
        return self._link.status()

    def errors(self) -> list[str]:
        """The ERROR register's set bits, by name."""
        return self._link.errors()

    def counters(self) -> dict[str, int]:
        """The last inference's counters: steps run, row events, spikes, events dropped."""
        return self._link.counters()

    # ---- simulation only ----------------------------------------------------------------------------------
    def relax(self, seconds: float) -> None:
        """Let `seconds` pass for the cells (models and co-simulation only: a board lives in real time)."""
        if isinstance(seconds, (int, float, np.integer, np.floating)) and seconds < 0:
            raise ValueError(f"time runs forward: {seconds} s")
        seconds = check_seconds("seconds", seconds)
        self._link.relax(seconds)
