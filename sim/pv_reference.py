"""The reference side of RTL-vs-model P&V runs: the `models.pv` recipe for a set of P&V register
values, and both sides' pulses in one comparable form (every cycle's DAC codes)."""

from __future__ import annotations

from ..config import ChipConfig
from ..models import Algorithm, PVSettings
from ..models.device import Shape
from ..models.pulses import pulse_codes
from ..models.pv import PVResult
from ..protocol import RECIPE_FIELDS, Op
from ..rtl.cell_driver import read_limit_volts

__all__ = ["LEVELS", "reference_recipe", "reference_levels", "port_pulses", "reference_pulses"]

#: The eight target levels the benches and tests program, in ADC codes: 10 ... 115 uS at 0.5 uS per code.
LEVELS = (20, 50, 80, 110, 140, 170, 200, 230)



def reference_recipe(registers: dict, config: ChipConfig) -> PVSettings:
    """`registers` holds the engine's recipe fields (algorithm, cumulative, reset_on_overshoot, DAC
    ramps, optionally triangular and form); the verify read happens at the drivers' read code, as on chip."""
    return PVSettings(algorithm=Algorithm(registers["algorithm"]), cumulative=bool(registers["cumulative"]),
                      reset_on_overshoot=bool(registers["reset_on_overshoot"]),
                      shape=Shape.TRIANGULAR if registers.get("triangular") else Shape.SQUARE,
                      form=bool(registers.get("form", 0)),
                      v_read=read_limit_volts(config),
                      **{name: registers[name] for name in RECIPE_FIELDS})


def reference_levels(registers: dict, levels: list[dict], config: ChipConfig) -> dict[int, PVSettings]:
    """The `models.pv` per-level settings {target code: recipe} for a level table (entries with the
    `protocol.LEVEL_FIELDS` keys) and the shared mode registers."""
    recipes = {}
    for entry in levels:
        if entry["target"] in recipes:
            raise ValueError(f"two levels share target code {entry['target']}")
        recipes[entry["target"]] = reference_recipe(registers | {k: v for k, v in entry.items() if k != "target"},
                                                    config)
    return recipes


def port_pulses(log, row: int, column: int) -> list[tuple]:
    """One cell's pulses as the port carried them: (op, wl codes, bl codes, sl codes) per pulse, from
    a log of (op, core, row, column, wl codes, bl codes, sl codes) entries (the bridge's `pulse_log`)."""
    return [(int(Op(entry[0])), *(tuple(int(c) for c in codes) for codes in entry[4:7]))
            for entry in log if (entry[2], entry[3]) == (row, column)]


def reference_pulses(outcome: PVResult, row: int, column: int, shape: Shape) -> list[tuple]:
    """The same cell's pulses from the reference log, each DAC's codes expanded cycle by cycle: the
    driven one (top electrode for SET/FORM, source line for RESET) shaped, the gate held."""
    pulses = []
    for entry in outcome.sequence(row, column):
        width, kind = int(entry["width"]), int(entry["kind"])
        driven = "sl" if kind == Op.RESET else "bl"
        codes = {name: (int(entry[name]),) * width for name in ("wl", "bl", "sl")}
        codes[driven] = tuple(pulse_codes(int(entry[driven]), width, shape).tolist())
        pulses.append((kind, codes["wl"], codes["bl"], codes["sl"]))
    return pulses
