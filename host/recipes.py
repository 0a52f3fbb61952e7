"""The programming recipe the host uses by default: IGVVA with a recipe per level (EMBER-style level
table), each gate ramp starting 3 sigma below its level's compliance (`models.pv.igvva_level_recipes`).

`rram-cim bench pv_cosim` measured it on a whole 64x64 core against single-recipe ISPVA and IGVVA:
6.4 pulses per cell and no failed cell, against 31.6 and 984 failures for plain IGVVA (docs/pv_engine.md).
"""

from __future__ import annotations

from ..config import ChipConfig
from ..models.pv import PVSettings, igvva_level_recipes
from ..models.recipes import reference_recipe

__all__ = ["IGVVA_REGISTERS", "level_recipes"]

#: The engine's recipe registers for IGVVA on the reference device: the top electrode fixed well above
#: V_set (133 codes = 2.0 V), the gate ramped 2 codes (20 mV) a pulse through the compliance range,
#: RESET at 1.65 V on overshoot, 4-cycle pulses, a 60-pulse budget and a +-2 code (+-1 uS) window.
IGVVA_REGISTERS = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, bl_start=133, bl_step=0, bl_stop=133,
                       wl_start=90, wl_step=2, wl_stop=170, sl_reset=110, pulse_width=4, max_pulses=60,
                       window=2)


def level_recipes(config: ChipConfig, level_codes, registers: dict | None = None) -> dict[int, PVSettings]:
    """{target code: PVSettings} for `level_codes`, from `registers` (IGVVA_REGISTERS by default)."""
    base = reference_recipe(registers or IGVVA_REGISTERS, config)
    return igvva_level_recipes(sorted(int(code) for code in level_codes), base, config)
