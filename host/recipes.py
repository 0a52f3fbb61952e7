"""The programming recipe the host uses by default: IGVVA with a recipe per level (EMBER-style level
table), each gate ramp starting 3 sigma below its level's compliance (`models.pv.igvva_level_recipes`).

`rram-cim bench pv_cosim` measured it on a whole 64x64 core against single-recipe ISPVA and IGVVA:
6.4 pulses per cell and no failed cell, against 31.6 and 984 failures for plain IGVVA (docs/pv_engine.md).

`HOLDING` is the option for verify reads that hold (docs/pv_engine.md, "Verify reads that hold"): four
averaged reads per verify, a confirming verify, windows widened with the level within half the level
spacing. On the default device it takes the share of cells that read back in their window from ~55 % to
~96 % (the chip's own 4-read average, eight levels on a 64x64 core), with fewer pulses.
"""

from __future__ import annotations

from dataclasses import replace

from ..config import ChipConfig
from ..models.device import HFO2_1T1R, DeviceParams
from ..models.pv import PVSettings, igvva_level_recipes, widened_windows
from ..models.recipes import reference_recipe

__all__ = ["IGVVA_REGISTERS", "HOLDING", "level_recipes"]

#: The engine's recipe registers for IGVVA on the reference device: the top electrode fixed well above
#: V_set (133 codes = 2.0 V), the gate ramped 2 codes (20 mV) a pulse through the compliance range,
#: RESET at 1.65 V on overshoot, 4-cycle pulses, a 60-pulse budget and a +-2 code (+-1 uS) window.
IGVVA_REGISTERS = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, bl_start=133, bl_step=0, bl_stop=133,
                       wl_start=90, wl_step=2, wl_stop=170, sl_reset=110, pulse_width=4, max_pulses=60,
                       window=2)

#: `level_recipes` options for verify reads that hold: 4 reads averaged per verify (read noise halved),
#: a confirming verify before a cell passes (NeuRRAM's), each window 6 such averaged read spreads wide
#: at its level, within half the level spacing.
HOLDING = dict(verify_reads=4, confirm=True, widen=6.0)


def level_recipes(config: ChipConfig, level_codes, registers: dict | None = None, *,
                  params: DeviceParams = HFO2_1T1R, verify_reads: int = 1, confirm: bool = False,
                  widen: float | None = None) -> dict[int, PVSettings]:
    """{target code: PVSettings} for `level_codes`, from `registers` (IGVVA_REGISTERS by default), the gate
    ramps placed for the device `params`. `verify_reads` (1, 2, 4 or 8) senses averaged per verify and
    `confirm` (a second verify before a cell passes) set PV.verify; `widen` (read-noise spreads, None:
    off) widens each level's window with the level, within half the level spacing
    (`models.pv.widened_windows`). The defaults are today's recipes."""
    base = replace(reference_recipe(registers or IGVVA_REGISTERS, config), verify_reads=verify_reads,
                   confirm=bool(confirm))
    recipes = igvva_level_recipes(sorted(int(code) for code in level_codes), base, config, params)
    return recipes if widen is None else widened_windows(recipes, config, params, widen)
