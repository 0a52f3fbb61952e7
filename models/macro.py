"""The analog macro in Python: the cores' cell arrays behind the port's codes (DESIGN.md seam 1).

What the cocotb bridge calls each time the RTL finishes a pulse or asks for a sense, and what a test
calls directly to predict the silicon: both go through the same two methods, so they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..config import REFERENCE, ChipConfig
from ..protocol import Conversion, Direction, Op
from .device import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray
from .neurons import NeuronBank, NeuronMode, NeuronParams, NeuronReset, column_voltages, differential_inputs

__all__ = ["AnalogMacro", "NeuronCodes", "codes_per_core", "flags_word", "TRIM_RANGE", "check_trims"]


@dataclass(frozen=True)
class NeuronCodes:
    """The neuron bank's parameters as the NEURON registers (and the port) carry them."""
    thresh_pos: int
    thresh_neg: int
    leak: int = 0               # membrane fraction lost per step, in 1/256 (LIF)
    refractory: int = 0         # time steps
    mode: int = NeuronMode.IF
    reset: int = NeuronReset.ZERO   # IF and LIF: 0 to zero, 1 subtract the threshold

    def params(self, config: ChipConfig, base: NeuronParams) -> NeuronParams:
        if self.thresh_pos <= 0 or self.thresh_neg <= 0:
            raise ModelInputError("neuron thresholds must be at least one code")
        if self.mode not in tuple(NeuronMode):
            raise ModelInputError(f"neuron mode {self.mode} is not one of {[int(m) for m in NeuronMode]}")
        if self.reset not in tuple(NeuronReset):
            raise ModelInputError(f"neuron reset {self.reset} is not one of {[int(r) for r in NeuronReset]}")
        return replace(base, v_threshold_pos=self.thresh_pos * config.threshold_volts_per_lsb,
                       v_threshold_neg=self.thresh_neg * config.threshold_volts_per_lsb,
                       leak=self.leak / LEAK_SCALE, refractory_steps=self.refractory, mode=NeuronMode(self.mode),
                       reset=NeuronReset(self.reset))


def codes_per_core(codes, cores: int) -> list[NeuronCodes]:
    """Each core's NeuronCodes from one set for every core, or from a sequence of one per page of neuron
    settings (`ChipConfig.neuron_pages`: one per core, or one for all)."""
    if isinstance(codes, NeuronCodes):
        return [codes] * cores
    codes = list(codes)
    if len(codes) == 1:
        return codes * cores
    if len(codes) != cores or not all(isinstance(c, NeuronCodes) for c in codes):
        raise ModelInputError(f"neuron settings: give one NeuronCodes, or one per core ({cores}), "
                              f"not {len(codes)} items")
    return codes


def flags_word(flags: np.ndarray) -> int:
    """Spike flags (cores x neurons) as the port's bit vector: neuron n of core c is bit c * NEURONS + n."""
    return sum(1 << int(bit) for bit in np.flatnonzero(flags))


#: Leak codes are fractions of 256.
LEAK_SCALE = 256
#: A neuron's comparator trim: a signed byte of threshold LSBs (+-12.7 mV at 0.1 mV), over six sigma of
#: the comparators' 2 mV offset spread (`NeuronParams.offset_sigma_v`).
TRIM_RANGE = range(-128, 128)


def check_trims(config: ChipConfig, codes) -> np.ndarray:
    """One core's trims: `config.neurons` integers in `TRIM_RANGE` (ModelInputError, a ValueError, if not)."""
    codes = np.asarray(codes)
    if codes.shape != (config.neurons,) or codes.dtype.kind not in "iu":
        raise ModelInputError(f"trims: {config.neurons} integer codes per core, not {codes.shape} {codes.dtype}")
    if np.any(codes < TRIM_RANGE.start) or np.any(codes >= TRIM_RANGE.stop):
        raise ModelInputError(f"trim codes lie in {TRIM_RANGE.start}..{TRIM_RANGE.stop - 1}")
    return codes.astype(np.int64)


class AnalogMacro:
    def __init__(self, config: ChipConfig = REFERENCE, seed: int = 0, params: DeviceParams = HFO2_1T1R,
                 formed: bool = True, neuron_noise: bool = False):
        self.config = config
        rng = np.random.default_rng(seed)
        self.cores = [ReRAMArray(config.rows, config.columns, rng, params, formed=formed)
                      for _ in range(config.cores)]
        self.pulses = 0
        # The neuron banks draw from their own generator, so programming history does not move them.
        neuron_rng = np.random.default_rng([seed, 1])
        base = NeuronParams(noise=neuron_noise)
        self.banks = [NeuronBank(config.neurons, base, neuron_rng) for _ in range(config.cores)]
        self._driven = [set() for _ in range(config.cores)]
        self._lines = [{} for _ in range(config.cores)]          # MVM input lines: line -> sign
        if 2 * config.neurons > config.columns:
            raise ModelInputError(f"{config.neurons} differential neurons need {2 * config.neurons} columns")

    def _array(self, core: int, row: int, column: int) -> ReRAMArray:
        config = self.config
        if not (0 <= core < config.cores and 0 <= row < config.rows and 0 <= column < config.columns):
            raise ModelInputError(f"cell ({core}, {row}, {column}) is outside the "
                                  f"{config.cores}x{config.rows}x{config.columns} macro")
        return self.cores[core]

    def pulse(self, op: Op, core: int, row: int, column: int, wl_codes, bl_codes, sl_codes) -> None:
        """Apply one pulse given as the DAC codes of each of its cycles."""
        config = self.config
        array = self._array(core, row, column)
        driven = [float(code) for code in (sl_codes if op == Op.RESET else bl_codes)]
        amplitude = max(driven)
        waveform = [code / amplitude for code in driven] if amplitude > 0 else [0.0] * len(driven)
        v_wl = max(wl_codes) * config.wl_volts_per_lsb
        if op == Op.SET:
            array.set_one(row, column, amplitude * config.bl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == Op.RESET:
            array.reset_one(row, column, amplitude * config.sl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == Op.FORM:
            array.form_one(row, column, amplitude * config.bl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        else:
            raise ModelInputError(f"operation {op} is not a pulse")
        self.pulses += 1

    def sense(self, core: int, row: int, column: int, bl_code: int) -> int:
        """ADC code of one cell read with the bit line at `bl_code`."""
        array = self._array(core, row, column)
        g = array.read_one(bl_code * self.config.bl_volts_per_lsb, row, column)
        top = (1 << self.config.adc_bits) - 1
        return min(max(int(np.rint(g / self.config.us_per_adc_lsb)), 0), top)

    # ---- inference -------------------------------------------------------------------------------------
    def drive_row(self, core: int, row: int) -> None:
        """Put `row` of `core` at the input read voltage for the current time step."""
        self._array(core, row, 0)
        self._driven[core].add(row)

    def integrate(self, v_read_code: int, codes) -> None:
        """Every neuron takes one sample of its differential column voltage (the driven rows at the
        read voltage, the others at 0 V); the driven rows are released for the next step. `codes`: one
        NeuronCodes for every core, or one per core (`codes_per_core`)."""
        config = self.config
        v_read = v_read_code * config.bl_volts_per_lsb
        codes = codes_per_core(codes, config.cores)
        for array, bank, driven, core_codes in zip(self.cores, self.banks, self._driven, codes):
            bank.params = core_codes.params(config, bank.params)
            if driven:
                v_rows = np.zeros(config.rows)
                v_rows[sorted(driven)] = v_read
                v_in = differential_inputs(column_voltages(array.g_us, v_rows)[:2 * config.neurons])
            else:
                v_in = np.zeros(config.neurons)
            bank.integrate(v_in)
            driven.clear()

    def fire(self, codes) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative spike flags, cores x neurons; `codes` as `integrate` takes them."""
        spikes = []
        for bank, core_codes in zip(self.banks, codes_per_core(codes, self.config.cores)):
            bank.params = core_codes.params(self.config, bank.params)
            spikes.append(bank.fire())
        spikes = np.stack(spikes)
        return spikes > 0, spikes < 0

    # ---- matrix-vector multiplication (models/mvm.py sequences these, as the port's strobes do) -----------
    def drive_line(self, core: int, direction, line: int, negative: bool) -> None:
        """Put one MVM input line of `core` at +V_read (or -V_read) for the next integration: a row forward,
        a column pair backward (+ on its G+ column, - on its G-)."""
        from .mvm import inputs
        if not 0 <= line < inputs(self.config, Direction(direction)):
            raise ModelInputError(f"line {line} is not an input of a {Direction(direction).name.lower()} MVM")
        self._array(core, 0, 0)
        self._lines[core][line] = -1 if negative else 1

    def integrate_lines(self, core: int, direction, v_read_code: int, codes: NeuronCodes, phase: int = 0) -> None:
        """One sample of the lines `drive_line` put up (the others at 0 V); the lines are released."""
        from .mvm import inputs
        signs = np.zeros(inputs(self.config, Direction(direction)), dtype=np.int8)
        for line, sign in self._lines[core].items():
            signs[line] = sign
        self._lines[core].clear()
        self.integrate_frame(core, direction, signs, v_read_code, codes, phase)

    def convert_step(self, core: int, shift: int, codes: NeuronCodes) -> tuple[np.ndarray, np.ndarray]:
        """One conversion decision of every neuron of `core` against +-2^shift thresholds (`NeuronBank`)."""
        bank = self.banks[core]
        bank.params = codes.params(self.config, bank.params)
        return bank.convert_step(1 << shift)

    def integrate_frame(self, core: int, direction, signs, v_read_code: int, codes: NeuronCodes,
                        phase: int = 0) -> None:
        """One sample of one MVM input frame on `core`: the inputs driven at signs * V_read (forward: the
        rows; backward: +V on column 2k and -V on column 2k+1 for input k), every neuron sensing its line
        (forward: its column pair; backward: row phase * neurons + k, 0 V past the last row)."""
        from .mvm import effective_weights           # the MVM model imports this module
        config = self.config
        bank = self.banks[core]
        bank.params = codes.params(config, bank.params)
        v_read = v_read_code * config.bl_volts_per_lsb
        v_lines = v_read * (np.asarray(signs, dtype=float) @ effective_weights(self.cores[core].g_us, direction,
                                                                              config.neurons))
        if Direction(direction) is Direction.BACKWARD:
            v_in = np.zeros(config.neurons)
            sensed = v_lines[phase * config.neurons:(phase + 1) * config.neurons]
            v_in[:len(sensed)] = sensed
        else:
            v_in = v_lines
        bank.integrate(v_in)

    def convert(self, core: int, out_bits: int, conversion, codes: NeuronCodes) -> tuple[np.ndarray, int]:
        """Every neuron of `core` turns its membrane into a signed `out_bits` output (`NeuronBank.convert`)."""
        bank = self.banks[core]
        bank.params = codes.params(self.config, bank.params)
        return bank.convert(out_bits, Conversion(conversion) is Conversion.SAR)

    def set_trims(self, core: int, codes) -> None:
        """Each neuron's comparator offset trim on `core`, in threshold LSBs (`TRIM_RANGE`), as calibration
        (host/calibration.py) sets it: the trim adds to what the comparators see."""
        codes = check_trims(self.config, codes)
        self._array(core, 0, 0)
        self.banks[core].trim_v = codes * self.config.threshold_volts_per_lsb

    def set_trim(self, core: int, neuron: int, code: int) -> None:
        """One neuron's trim, as the chip writes it over the analog port (op TRIM, one neuron a cycle)."""
        if not 0 <= neuron < self.config.neurons:
            raise ModelInputError(f"neuron {neuron} is outside the {self.config.neurons} of a core")
        trims = self.trims(core)
        trims[neuron] = code
        self.set_trims(core, trims)

    def trims(self, core: int) -> np.ndarray:
        """Each neuron's trim on `core`, in threshold LSBs."""
        self._array(core, 0, 0)
        return np.rint(self.banks[core].trim_v / self.config.threshold_volts_per_lsb).astype(int)

    def reset_neurons(self) -> None:
        for bank, driven, lines in zip(self.banks, self._driven, self._lines):
            bank.reset()
            driven.clear()
            lines.clear()
