"""The emulated analog macro's arithmetic, in Python: the reference `fpga/emulated_macro.py` is tested
against, and what a board running the emulation computes, integer for integer.

On an FPGA there is no ReRAM, so the macro behind the analog port becomes logic. It keeps the port's
behaviour, not the physics:

* **Cells.** Each cell is one conductance code in ADC units (`adc_bits` wide, at most 8) in block RAM.
  Gate, top-electrode and source-line codes are `dac_bits` wide; what they mean in volts comes from
  the config, so a 10-bit DAC config SETs and RESETs at the same voltages as an 8-bit one.
  - A SET (or FORM) pulse whose peak top-electrode code reaches V_set raises the cell to the compliance
    its peak gate code allows, if that is above where the cell is. The compliance is a table computed
    from the device model's I_C = k (V_G - V_T)^2, R = V_C / I_C, so the host's per-level IGVVA recipes
    fit. A +-6 % jitter from an LFSR makes P&V take several pulses, as on the device.
  - A RESET pulse at or above V_reset keeps a fraction of the cell's conductance above the floor. The
    fraction falls with the overdrive (by 4/256 per 8-bit code, so per volt whatever the DAC's width),
    plus LFSR jitter.
  - A sense returns the code with a +-3 % LFSR read noise.
  - One 16-bit Galois LFSR steps once per pulse applied and once per sense.
* **Neurons.** They follow the voltage-mode rule of `models.neurons` in fixed point.
  - Each column keeps its total conductance. A step's input to neuron n is
    V_r (num+/S+ - num-/S-), where num is the driven rows' conductance sum and S the column total;
    each quotient is a 12-bit fraction from a restoring division.
  - The membrane holds threshold LSBs with 8 fractional bits and moves by gain * V_r / LSB times the
    input (the `ChipConfig` constants, rounded to 1/16).
  - IF, LIF and ADC modes, the +- thresholds and the refractory period are as on the chip. There is no
    noise: the emulation is the ideal neuron.
* **MVM** (docs/mvm.md; only with `ChipConfig.mvm`). Input lines are driven at +-V_r, listed once per
  sample with the sign they were first named with; an integrate samples them into one core's neurons
  and releases the lines of every core.
  - Forward, as inference but signed: num is the signed sum of the driven rows' codes, and each
    quotient is sign(num) * floor(|num| / S), 12 bits.
  - Backward, input line k puts +-V_r on column 2k and -+V_r on 2k+1; neuron k senses row
    r = phase * neurons + k, num_k = sum_l s_l (code[r, 2l] - code[r, 2l+1]) over the driven lines,
    divided by R[r], the row's total over all columns (kept like the column totals); 0 past the last row.
  - A convert step compares membrane + trim against +-2^shift thresholds of the core's page: +1 and
    subtract at or above the positive one, -1 and add at or below the negative one.
* **Trims.** A signed byte of threshold LSBs per neuron (`set_trim`, the port's TRIM cycle), added to
  what the comparators see in fire and convert; kept across neuron resets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import REFERENCE, ChipConfig
from ..models.device import HFO2_1T1R, DeviceParams, ModelInputError
from ..models.macro import LEAK_SCALE, TRIM_RANGE, codes_per_core
from ..models.neurons import NeuronMode, NeuronParams, NeuronReset
from ..protocol import Direction, Op

__all__ = ["EmulationParams", "Lfsr", "EmulatedMacroModel"]

#: Galois LFSR x^16 + x^14 + x^13 + x^11 + 1 (maximal length); never zero.
LFSR_TAPS = 0xB400
LFSR_SEED = 0xACE1
#: Fixed point: quotient bits of num/S, fractional bits of the membrane, of the V_r gain constant.
QUOTIENT_BITS = 12
MEMBRANE_FRACTION = 8
GAIN_FRACTION = 4
MEMBRANE_BITS = 24
#: A RESET at V_reset keeps 192/256 of the conductance above the floor, 4/256 less per 8-bit DAC code of
#: overdrive (scaled to the config's DAC width, so the same per volt).
RESET_KEEP_BASE = 192
RESET_KEEP_SLOPE = 4
KEEP_SLOPE_BITS = 8


class Lfsr:
    def __init__(self, seed: int = LFSR_SEED):
        self.state = seed

    def step(self) -> int:
        """Advance once; return the new state."""
        lsb = self.state & 1
        self.state >>= 1
        if lsb:
            self.state ^= LFSR_TAPS
        return self.state


@dataclass(frozen=True)
class EmulationParams:
    """The emulation's integer constants, derived from a `ChipConfig` and the device model."""
    compliance: tuple[int, ...]      # code a SET at each gate code reaches, one per DAC code
    set_code: int                    # lowest top-electrode code that SETs
    reset_code: int                  # lowest source-line code that RESETs
    floor_code: int                  # HRS floor
    init_code: int                   # every cell after power-up (formed, at the floor)
    gain16: int                      # membrane LSBs per volt of V_r per unit input, x 16
    dac_bits: int                    # width of the gate, top-electrode and source-line codes
    code_top: int                    # largest cell code: the ADC's full scale

    @classmethod
    def derive(cls, config: ChipConfig = REFERENCE, params: DeviceParams = HFO2_1T1R) -> "EmulationParams":
        top = (1 << config.adc_bits) - 1
        gates = np.arange(1 << config.dac_bits) * config.wl_volts_per_lsb
        compliance = np.clip(np.rint(params.compliance_us(gates, params.v_t) / config.us_per_adc_lsb), 0, top)
        floor = int(np.ceil(params.g_min_us / config.us_per_adc_lsb))
        gain = NeuronParams().gain * config.bl_volts_per_lsb / config.threshold_volts_per_lsb
        return cls(compliance=tuple(int(c) for c in np.maximum(compliance, floor)),
                   set_code=int(np.ceil(params.v_set / config.bl_volts_per_lsb)),
                   reset_code=int(np.ceil(params.v_reset / config.sl_volts_per_lsb)),
                   floor_code=floor, init_code=floor, gain16=int(round(gain * (1 << GAIN_FRACTION))),
                   dac_bits=config.dac_bits, code_top=top)


def set_result(p: EmulationParams, code: int, peak_bl: int, peak_wl: int, random: int) -> int:
    target = p.compliance[peak_wl]
    if peak_bl < p.set_code or target <= code:
        return code
    jitter = (target * ((random & 0x1F) - 16)) >> 8              # -16..15 / 256: +-6 %
    return min(max(target + jitter, p.floor_code), p.code_top)


def reset_result(p: EmulationParams, code: int, peak_sl: int, random: int) -> int:
    if peak_sl < p.reset_code or code <= p.floor_code:
        return code
    fall = (RESET_KEEP_SLOPE * (peak_sl - p.reset_code) << KEEP_SLOPE_BITS) >> p.dac_bits
    keep = min(max(RESET_KEEP_BASE - fall + ((random & 0x1F) - 16), 0), 255)
    return p.floor_code + (((code - p.floor_code) * keep) >> 8)


def sensed(p: EmulationParams, code: int, random: int) -> int:
    return min(max(code + ((code * ((random & 0xF) - 8)) >> 8), 0), p.code_top)      # -8..7 / 256: +-3 %


def quotient(num: int, total: int) -> int:
    """num / total as a QUOTIENT_BITS-bit fraction (num <= total), floor, 0 for an empty column."""
    return (num << QUOTIENT_BITS) // total if total else 0


def signed_quotients(num: np.ndarray, total: np.ndarray) -> np.ndarray:
    """`quotient` of signed numerators (|num| <= total): the magnitude's, with num's sign (so rounded
    towards zero), 0 for an empty line."""
    num, total = np.asarray(num, dtype=np.int64), np.asarray(total, dtype=np.int64)
    magnitude = (np.abs(num) << QUOTIENT_BITS) // np.maximum(total, 1)
    return np.where(total > 0, np.sign(num) * magnitude, 0)


class EmulatedMacroModel:
    """The emulated macro at the transaction level: the same calls as `models.AnalogMacro`."""

    def __init__(self, config: ChipConfig = REFERENCE, params: EmulationParams | None = None):
        self.config = config
        self.p = params or EmulationParams.derive(config)
        self.codes = np.full((config.cores, config.rows, config.columns), self.p.init_code, dtype=np.int64)
        self.lfsr = Lfsr()
        self.membrane = np.zeros((config.cores, config.neurons), dtype=np.int64)
        self.refractory = np.zeros((config.cores, config.neurons), dtype=np.int64)
        self.driven: list[list[int]] = [[] for _ in range(config.cores)]
        #: MVM input lines per core, as (line, negative), each listed once with its first sign.
        self.lines: list[list[tuple[int, bool]]] = [[] for _ in range(config.cores)]
        #: Each neuron's comparator trim, threshold LSBs.
        self.trim = np.zeros((config.cores, config.neurons), dtype=np.int64)

    # ---- cells ------------------------------------------------------------------------------------------
    def pulse(self, op: int, core: int, row: int, column: int, wl_codes, bl_codes, sl_codes) -> None:
        random = self.lfsr.step()
        code = int(self.codes[core, row, column])
        if op in (Op.SET, Op.FORM):
            code = set_result(self.p, code, max(bl_codes), max(wl_codes), random)
        elif op == Op.RESET:
            code = reset_result(self.p, code, max(sl_codes), random)
        self.codes[core, row, column] = code

    def sense(self, core: int, row: int, column: int, bl_code: int = 0) -> int:
        return sensed(self.p, int(self.codes[core, row, column]), self.lfsr.step())

    # ---- neurons ----------------------------------------------------------------------------------------
    def drive_row(self, core: int, row: int) -> None:
        if row not in self.driven[core]:
            self.driven[core].append(row)

    def reset_neurons(self) -> None:
        self.membrane[:] = 0
        self.refractory[:] = 0
        self.driven = [[] for _ in range(self.config.cores)]
        self.lines = [[] for _ in range(self.config.cores)]

    def _moved(self, core: int, v_read_code: int, core_codes, difference: np.ndarray) -> None:
        """Every neuron of `core`: leak (LIF), then move by gain * V_r times its quotient difference."""
        scale = v_read_code * self.p.gain16
        top = 1 << (MEMBRANE_BITS - 1)
        v = self.membrane[core]
        if core_codes.mode == NeuronMode.LIF:
            v = v - ((v * core_codes.leak) >> (LEAK_SCALE.bit_length() - 1))
        shift = QUOTIENT_BITS + GAIN_FRACTION - MEMBRANE_FRACTION
        increment = (scale * np.asarray(difference, dtype=np.int64)) >> shift
        self.membrane[core] = np.clip(v + increment, -top, top - 1)

    def integrate(self, v_read_code: int, codes) -> None:
        """`codes`: one NeuronCodes for every core, or one per core (`models.macro.codes_per_core`)."""
        config = self.config
        for core, core_codes in enumerate(codes_per_core(codes, config.cores)):
            codes = self.codes[core]
            num = codes[self.driven[core]].sum(axis=0)[:2 * config.neurons]
            q = [quotient(int(n), int(t)) for n, t in zip(num, codes.sum(axis=0))]
            self._moved(core, v_read_code, core_codes, np.array(q[0::2]) - np.array(q[1::2]))
            self.driven[core] = []

    def fire(self, codes) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative spike flags, cores x neurons; `codes` as `integrate` takes them."""
        codes = codes_per_core(codes, self.config.cores)
        # Each core's settings as a column, so they broadcast over its neurons.
        def column(name):
            return np.array([[getattr(c, name)] for c in codes], dtype=np.int64)
        up_at, down_at = column("thresh_pos") << MEMBRANE_FRACTION, column("thresh_neg") << MEMBRANE_FRACTION
        adc = column("mode") == NeuronMode.ADC
        subtract = adc | (column("reset") == NeuronReset.SUBTRACT)
        ready = self.refractory == 0
        compared = self.membrane + (self.trim << MEMBRANE_FRACTION)
        up = ready & (compared >= up_at)
        down = ready & ~up & (compared <= -down_at)
        fired = up | down
        subtracted = self.membrane - up * up_at + down * down_at
        self.membrane = np.where(subtract, subtracted, np.where(fired, 0, self.membrane))
        self.refractory = np.where(adc, self.refractory,
                                   np.where(fired, column("refractory"), np.maximum(self.refractory - 1, 0)))
        return up, down

    # ---- matrix-vector multiplication and trims (what `sim.port_responder` calls, as on `AnalogMacro`) -----
    def drive_line(self, core: int, direction, line: int, negative: bool) -> None:
        """Put MVM input line `line` of `core` at +V_r (or -V_r) for the next integrate: a row forward, a
        column pair backward. A line named again before that integrate keeps its first sign."""
        lines = self.config.rows if Direction(direction) is Direction.FORWARD else self.config.neurons
        if not 0 <= line < lines:
            raise ModelInputError(f"line {line} is not an input of a {Direction(direction).name.lower()} MVM")
        if all(listed != line for listed, _ in self.lines[core]):
            self.lines[core].append((line, bool(negative)))

    def integrate_lines(self, core: int, direction, v_read_code: int, codes, phase: int = 0) -> None:
        """One sample of the driven lines into `core`'s neurons (forward: neuron k's column pair;
        backward: row phase * neurons + k, nothing past the last row); every core's lines are released."""
        config = self.config
        core_codes = codes_per_core(codes, config.cores)[core]
        cells = self.codes[core]
        neurons = config.neurons
        if Direction(direction) is Direction.FORWARD:
            signs = np.zeros(config.rows, dtype=np.int64)
            for line, negative in self.lines[core]:
                signs[line] = -1 if negative else 1
            columns = 2 * neurons
            q = signed_quotients(signs @ cells[:, :columns], cells[:, :columns].sum(axis=0))
            difference = q[0::2] - q[1::2]
        else:
            signs = np.zeros(neurons, dtype=np.int64)
            for line, negative in self.lines[core]:
                signs[line] = -1 if negative else 1
            rows = np.arange(phase * neurons, (phase + 1) * neurons)
            sensed = rows < config.rows
            pairs = cells[rows[sensed]]
            num = (pairs[:, 0:2 * neurons:2] - pairs[:, 1:2 * neurons:2]) @ signs
            difference = np.zeros(neurons, dtype=np.int64)
            difference[sensed] = signed_quotients(num, pairs.sum(axis=1))
        self._moved(core, v_read_code, core_codes, difference)
        self.lines = [[] for _ in range(config.cores)]

    def convert_step(self, core: int, shift: int, codes) -> tuple[np.ndarray, np.ndarray]:
        """One conversion decision of each neuron of `core` against +-2^shift thresholds of its page: the
        flags (+, -), and the membranes that decided lose (or gain back) those thresholds."""
        core_codes = codes_per_core(codes, self.config.cores)[core]
        up_at = (core_codes.thresh_pos << shift) << MEMBRANE_FRACTION
        down_at = (core_codes.thresh_neg << shift) << MEMBRANE_FRACTION
        compared = self.membrane[core] + (self.trim[core] << MEMBRANE_FRACTION)
        up = compared >= up_at
        down = ~up & (compared <= -down_at)
        self.membrane[core] = self.membrane[core] - up * up_at + down * down_at
        return up, down

    def set_trim(self, core: int, neuron: int, code: int) -> None:
        """One neuron's comparator trim, threshold LSBs (`models.macro.TRIM_RANGE`), as the port's TRIM cycle
        writes it."""
        if not (0 <= core < self.config.cores and 0 <= neuron < self.config.neurons) or code not in TRIM_RANGE:
            raise ModelInputError(f"trim {code} of neuron {neuron} of core {core}: the macro has "
                                  f"{self.config.cores} cores of {self.config.neurons} neurons, trims lie in "
                                  f"{TRIM_RANGE.start}..{TRIM_RANGE.stop - 1}")
        self.trim[core, neuron] = code

    def trims(self, core: int) -> np.ndarray:
        """Each neuron's trim on `core`, threshold LSBs."""
        return self.trim[core].copy()
