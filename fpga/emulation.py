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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import REFERENCE, ChipConfig
from ..models.device import HFO2_1T1R, DeviceParams
from ..models.macro import LEAK_SCALE, codes_per_core
from ..models.neurons import NeuronMode, NeuronParams, NeuronReset
from ..protocol import Op

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

    def integrate(self, v_read_code: int, codes) -> None:
        """`codes`: one NeuronCodes for every core, or one per core (`models.macro.codes_per_core`)."""
        config = self.config
        scale = v_read_code * self.p.gain16
        top = 1 << (MEMBRANE_BITS - 1)
        for core, core_codes in enumerate(codes_per_core(codes, config.cores)):
            mode, leak = core_codes.mode, core_codes.leak
            codes = self.codes[core]
            for neuron in range(config.neurons):
                q = []
                for column in (2 * neuron, 2 * neuron + 1):
                    num = int(sum(int(codes[row, column]) for row in self.driven[core]))
                    q.append(quotient(num, int(codes[:, column].sum())))
                v = int(self.membrane[core, neuron])
                if mode == NeuronMode.LIF:
                    v -= (v * leak) >> LEAK_SCALE.bit_length() - 1
                increment = (scale * (q[0] - q[1])) >> (QUOTIENT_BITS + GAIN_FRACTION - MEMBRANE_FRACTION)
                self.membrane[core, neuron] = min(max(v + increment, -top), top - 1)
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
        up = ready & (self.membrane >= up_at)
        down = ready & ~up & (self.membrane <= -down_at)
        fired = up | down
        subtracted = self.membrane - up * up_at + down * down_at
        self.membrane = np.where(subtract, subtracted, np.where(fired, 0, self.membrane))
        self.refractory = np.where(adc, self.refractory,
                                   np.where(fired, column("refractory"), np.maximum(self.refractory - 1, 0)))
        return up, down
