"""The `models.pv` recipe for a set of P&V register values: what the chip's engine runs, as the model's
settings, so model and chip can be run on the same recipe (host defaults, benches, tests)."""

from __future__ import annotations

from ..config import ChipConfig, read_limit_volts
from ..protocol import RECIPE_FIELDS
from .device import Shape
from .pv import Algorithm, PVSettings

__all__ = ["LEVELS", "reference_recipe", "reference_levels"]

#: The eight target levels the benches and tests program, in ADC codes: 10 ... 115 uS at 0.5 uS per code.
LEVELS = (20, 50, 80, 110, 140, 170, 200, 230)


def reference_recipe(registers: dict, config: ChipConfig) -> PVSettings:
    """`registers` holds the engine's recipe fields (algorithm, cumulative, reset_on_overshoot, DAC
    ramps, optionally triangular, form, reads_log2, confirm and RADAR's sl_step and sl_stop); the verify read happens at the drivers'
    read code, as on chip."""
    return PVSettings(algorithm=Algorithm(registers["algorithm"]), cumulative=bool(registers["cumulative"]),
                      reset_on_overshoot=bool(registers["reset_on_overshoot"]),
                      shape=Shape.TRIANGULAR if registers.get("triangular") else Shape.SQUARE,
                      form=bool(registers.get("form", 0)),
                      verify_reads=1 << registers.get("reads_log2", 0), confirm=bool(registers.get("confirm", 0)),
                      sl_step=registers.get("sl_step", 0), sl_stop=registers.get("sl_stop", 0),
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
