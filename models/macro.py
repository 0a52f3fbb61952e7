"""The analog macro in Python: the cores' cell arrays behind the port's codes (DESIGN.md seam 1).

What the cocotb bridge calls each time the RTL finishes a pulse or asks for a sense, and what a test
calls directly to predict the silicon: both go through the same two methods, so they agree exactly.
"""

from __future__ import annotations

import numpy as np

from ..config import REFERENCE, ChipConfig
from .device import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray

__all__ = ["AnalogMacro", "MacroOp"]


class MacroOp:
    """Operation codes of the port (the same values as `rtl.analog_port.Op`)."""
    IDLE, READ, SET, RESET, FORM = range(5)


class AnalogMacro:
    def __init__(self, config: ChipConfig = REFERENCE, seed: int = 0, params: DeviceParams = HFO2_1T1R,
                 formed: bool = True):
        self.config = config
        rng = np.random.default_rng(seed)
        self.cores = [ReRAMArray(config.rows, config.columns, rng, params, formed=formed)
                      for _ in range(config.cores)]
        self.pulses = 0

    def _array(self, core: int, row: int, column: int) -> ReRAMArray:
        config = self.config
        if not (0 <= core < config.cores and 0 <= row < config.rows and 0 <= column < config.columns):
            raise ModelInputError(f"cell ({core}, {row}, {column}) is outside the "
                                  f"{config.cores}x{config.rows}x{config.columns} macro")
        return self.cores[core]

    def pulse(self, op: int, core: int, row: int, column: int, wl_codes, bl_codes, sl_codes) -> None:
        """Apply one pulse given as the DAC codes of each of its cycles."""
        config = self.config
        array = self._array(core, row, column)
        driven = [float(code) for code in (sl_codes if op == MacroOp.RESET else bl_codes)]
        amplitude = max(driven)
        waveform = [code / amplitude for code in driven] if amplitude > 0 else [0.0] * len(driven)
        v_wl = max(wl_codes) * config.wl_volts_per_lsb
        if op == MacroOp.SET:
            array.set_one(row, column, amplitude * config.bl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == MacroOp.RESET:
            array.reset_one(row, column, amplitude * config.sl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == MacroOp.FORM:
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
