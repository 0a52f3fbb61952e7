"""The analog macro in Python: the cores' cell arrays behind the port's codes (DESIGN.md seam 1).

What the cocotb bridge calls each time the RTL finishes a pulse or asks for a sense, and what a test
calls directly to predict the silicon: both go through the same two methods, so they agree exactly.
"""

from __future__ import annotations

import numpy as np

from ..config import REFERENCE, ChipConfig
from .device import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray
from .pv import adc_codes

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

    def _cell(self, core: int, row: int, column: int):
        """The core's array and the (row, column) selection of one cell in it."""
        config = self.config
        if not (0 <= core < config.cores and 0 <= row < config.rows and 0 <= column < config.columns):
            raise ModelInputError(f"cell ({core}, {row}, {column}) is outside the "
                                  f"{config.cores}x{config.rows}x{config.columns} macro")
        return self.cores[core], (row, column)

    def pulse(self, op: int, core: int, row: int, column: int, wl_codes, bl_codes, sl_codes) -> None:
        """Apply one pulse given as the DAC codes of each of its cycles."""
        config = self.config
        array, select = self._cell(core, row, column)
        driven = np.asarray(sl_codes if op == MacroOp.RESET else bl_codes, dtype=float)
        amplitude = driven.max()
        waveform = driven / amplitude if amplitude > 0 else np.zeros_like(driven)
        v_wl = max(wl_codes) * config.wl_volts_per_lsb
        if op == MacroOp.SET:
            array.set_pulse(select, amplitude * config.bl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == MacroOp.RESET:
            array.reset_pulse(select, amplitude * config.sl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        elif op == MacroOp.FORM:
            array.form(select, amplitude * config.bl_volts_per_lsb, v_wl, waveform, config.seconds_per_cycle)
        else:
            raise ModelInputError(f"operation {op} is not a pulse")
        self.pulses += 1

    def sense(self, core: int, row: int, column: int, bl_code: int) -> int:
        """ADC code of one cell read with the bit line at `bl_code`."""
        array, cell = self._cell(core, row, column)
        g = array.read_cells(bl_code * self.config.bl_volts_per_lsb, [row * self.config.columns + column])
        return int(adc_codes(g, self.config)[0])
