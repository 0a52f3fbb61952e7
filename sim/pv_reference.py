"""The reference P&V recipe for a set of P&V register values, so RTL runs and `models.pv` runs are
configured from the same numbers."""

from __future__ import annotations

from ..config import ChipConfig
from ..models import Algorithm, PVSettings
from ..rtl.cell_driver import read_limit_code

__all__ = ["reference_recipe"]

SHARED = ("bl_start", "bl_step", "bl_stop", "wl_start", "wl_step", "wl_stop", "sl_reset", "pulse_width",
          "max_pulses", "window")


def reference_recipe(registers: dict, config: ChipConfig) -> PVSettings:
    """`registers` holds the engine's recipe fields (algorithm, cumulative, reset_on_overshoot, DAC
    ramps, ...); the verify read happens at the drivers' read code, as on chip."""
    return PVSettings(algorithm=Algorithm(registers["algorithm"]), cumulative=bool(registers["cumulative"]),
                      reset_on_overshoot=bool(registers["reset_on_overshoot"]),
                      v_read=read_limit_code(config) * config.bl_volts_per_lsb,
                      **{name: registers[name] for name in SHARED})
