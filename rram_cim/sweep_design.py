"""A sweep's design: which virtual chips a campaign programs and runs, each one a point.

A point is a parameter combination (device parameters, a P&V recipe, a relaxation age, a network seed)
on one chip (a device seed). The combinations are a grid (every value of every axis with every other)
or random (each drawn on its own); each combination is run on `chips` chips:

    kind = "random"          # or "grid"
    points = 50              # random: parameter combinations drawn
    chips = 4                # device seeds per combination
    seed = 7                 # the campaign seed: every draw and device seed derives from it
    [vary]
    stuck_rate = {low = 0.0, high = 0.03}          # random: uniform; grid: needs n = ...
    read_noise_rel = [0.02, 0.05]                  # a list: grid values, or a random choice
    algorithm = ["igvva_levels", "ispva"]

or, on the command line, `--vary stuck_rate=0:0.03:4 --vary algorithm=igvva_levels,ispva --chips 4`.

Seeds come from the design alone, never from the order points are run in or the worker they land on:
point `index = combination * chips + chip`; chip c's devices are drawn from SeedSequence(seed) spawned at
(c,), so chip c is the same chip in every combination (common random numbers: yield against a parameter
is compared on the same chips); a random combination k is drawn from SeedSequence(seed) at (k, 1), so
adding points to a random design leaves the first ones where they were.

Every point is built (device parameters, recipes) by `Design.check` before any work starts, and a bad
one is refused naming the axis and what would be right (`DesignError`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import math
import tomllib
from dataclasses import dataclass, field

import numpy as np

from .config import ChipConfig

__all__ = ["axes", "Design", "DesignError", "Point", "Range", "parse_values", "design_from_toml",
           "point_recipes", "ALGORITHMS", "POINTS_MAX"]

#: More points than this is a typing error (or a campaign to split), not a sweep to start.
POINTS_MAX = 1_000_000
#: Test digits a chip can be scored on (scikit-learn's digits, the 20 % split).
DIGITS_MAX = 360
SEED_LIMIT = 2 ** 32


class DesignError(ValueError):
    """A design that cannot be run: what was wrong and what would be right."""


@dataclass(frozen=True)
class Range:
    """A span of values: `n` evenly spaced from `low` to `high` in a grid, one uniform draw per point in a
    random design (`n` is then not used)."""
    low: float
    high: float
    n: int | None = None


# ---- the axes a design may vary ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    name: str
    kind: type                  # float, int or str
    help: str
    low: float | None = None    # the least value allowed (None: DeviceParams decides)
    choices: tuple = ()         # the only values allowed, when there are few


#: P&V recipes, as `rram-cim bench pv_cosim` names them: IGVVA with a recipe per level (the host's default,
#: `host.recipes`), one IGVVA recipe for every level, one ISPVA recipe for every level.
ALGORITHMS = ("igvva_levels", "igvva", "ispva")

#: Scale factors over groups of DeviceParams spreads (1 = the reference device), and a stuck-cell rate
#: split evenly between stuck-at-LRS and stuck-at-HRS.
_D2D = ("v_t_sigma", "v_set_d2d_sigma", "v_form_sigma")
_C2C = ("g_cc_sigma", "v_set_c2c_sigma", "reset_sigma")


@functools.cache
def _device_fields() -> frozenset[str]:
    from .models.device import DeviceParams           # here, so that the CLI starts without the models
    return frozenset(f.name for f in dataclasses.fields(DeviceParams) if f.type == "float")


@functools.cache
def axes() -> dict[str, Axis]:
    """Every axis a design may vary, by name."""
    return {
        "d2d_scale": Axis("d2d_scale", float, f"device-to-device spread, times the reference ({', '.join(_D2D)})",
                          0.0),
        "c2c_scale": Axis("c2c_scale", float, f"cycle-to-cycle spread, times the reference ({', '.join(_C2C)})",
                          0.0),
        "stuck_rate": Axis("stuck_rate", float, "share of stuck cells, half at LRS and half at HRS", 0.0),
        **{name: Axis(name, float, f"DeviceParams.{name} (models/device.py)") for name in sorted(_device_fields())},
        "algorithm": Axis("algorithm", str, "P&V recipe", choices=ALGORITHMS),
        "step": Axis("step", int, "DAC codes the ramped voltage climbs per pulse (gate for IGVVA, top "
                                 "electrode for ISPVA)", 1),
        "window": Axis("window", int, "verify window, +- ADC codes", 0),
        "max_pulses": Axis("max_pulses", int, "pulse budget per cell", 1),
        "verify_reads": Axis("verify_reads", int, "reads averaged per verify (PV.verify.reads_log2)", 1,
                             choices=(1, 2, 4, 8)),
        "confirm": Axis("confirm", int, "1: a second verify before a cell passes (PV.verify.confirm)", 0,
                        choices=(0, 1)),
        "widen": Axis("widen", float, "igvva_levels: each window widened to this many read-noise spreads of "
                                      "its level, within half the level spacing (0: off)", 0.0),
        "age_s": Axis("age_s", float, "relaxation time between programming and inference, seconds", 0.0),
        "network_seed": Axis("network_seed", int, "seed of the data split and the training (one network per "
                                                  "seed, trained once per campaign)", 0),
    }


DEFAULTS = {"d2d_scale": 1.0, "c2c_scale": 1.0, "stuck_rate": 0.0, "algorithm": "igvva_levels", "step": 2,
            "window": 2, "max_pulses": 60, "verify_reads": 1, "confirm": 0, "widen": 0.0, "age_s": 0.0,
            "network_seed": 1}
RECIPE_AXES = ("algorithm", "step", "window", "max_pulses", "verify_reads", "confirm", "widen")


def _unknown(name: str) -> DesignError:
    near = difflib.get_close_matches(name, axes(), n=3)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return DesignError(f"no axis {name!r}: {hint}axes are {', '.join(axes())}")


def _typed(axis: Axis, value):
    """`value` as the axis's type, checked against its least value and choices."""
    if axis.kind is str:
        text = str(value)
        if text not in axis.choices:
            raise DesignError(f"{axis.name} = {text!r}: choose one of {', '.join(axis.choices)}")
        return text
    if isinstance(value, bool):
        raise DesignError(f"{axis.name} = {value!r}: needs a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DesignError(f"{axis.name} = {value!r}: needs a number") from None
    if not math.isfinite(number):
        raise DesignError(f"{axis.name} = {value!r}: needs a finite number")
    if axis.kind is int:
        if number != int(number):
            raise DesignError(f"{axis.name} = {value!r}: needs a whole number")
        number = int(number)
        if axis.name == "network_seed" and number >= SEED_LIMIT:
            raise DesignError(f"network_seed = {number}: seeds go from 0 to {SEED_LIMIT - 1}")
    if axis.low is not None and number < axis.low:
        raise DesignError(f"{axis.name} = {value!r}: needs at least {axis.low:g}")
    if axis.choices and number not in axis.choices:
        raise DesignError(f"{axis.name} = {value!r}: choose one of {', '.join(map(str, axis.choices))}")
    return number


def parse_values(name: str, text: str):
    """A command line's values of one axis: `a,b,c` (a list) or `low:high[:n]` (a Range)."""
    if name not in axes():
        raise _unknown(name)
    axis = axes()[name]
    if ":" in text and axis.choices:
        raise DesignError(f"{name}={text}: {name} takes a list of {', '.join(map(str, axis.choices))}, "
                          f"not a range")
    if ":" in text and axis.kind is not str:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise DesignError(f"{name}={text}: a range is low:high (random) or low:high:n (grid)")
        low, high = (_typed(axis, part) for part in parts[:2])
        n = _count(name, parts[2]) if len(parts) == 3 else None
        return _range(name, low, high, n)
    values = [part.strip() for part in text.split(",")]
    if not all(values):
        raise DesignError(f"{name}={text}: an empty value; give a,b,c or low:high[:n]")
    return tuple(_typed(axis, value) for value in values)


def _count(name: str, text) -> int:
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if isinstance(text, bool) or n < 1:
        raise DesignError(f"{name}: n = {text!r} needs a whole number of values, at least 1")
    return n


def _range(name: str, low, high, n) -> Range:
    if high < low:
        raise DesignError(f"{name}: the range {low:g}..{high:g} runs backwards; give low:high with low <= high")
    return Range(low, high, n)


def _toml_values(name: str, raw):
    if name not in axes():
        raise _unknown(name)
    axis = axes()[name]
    if isinstance(raw, dict):
        extra = set(raw) - {"low", "high", "n"}
        if extra or not {"low", "high"} <= set(raw) or axis.choices:
            raise DesignError(f"{name}: a range is {{low = ..., high = ...[, n = ...]}}"
                              + (f", not {sorted(extra)}" if extra else "")
                              + (f"; {name} takes a list of {', '.join(map(str, axis.choices))}" if axis.choices
                                 else ""))
        n = _count(name, raw["n"]) if "n" in raw else None
        return _range(name, _typed(axis, raw["low"]), _typed(axis, raw["high"]), n)
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise DesignError(f"{name}: an empty list; give at least one value")
    return tuple(_typed(axis, value) for value in values)


# ---- points --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One virtual chip: its index in the design, its chip (device draws) and its parameter values."""
    index: int
    chip: int
    device_seed: int
    values: dict = field(hash=False)

    def __getitem__(self, name: str):
        return self.values[name] if name in self.values else DEFAULTS[name]

    def device_params(self):
        """The DeviceParams of this point: the reference device with the point's values over it."""
        return device_params(self.values)


def device_params(values: dict):
    """DeviceParams: the reference device (HFO2_1T1R) with `values` over it."""
    from .models.device import HFO2_1T1R
    p = HFO2_1T1R
    changes = {name: values[name] for name in values if name in _device_fields()}
    d2d, c2c = values.get("d2d_scale", 1.0), values.get("c2c_scale", 1.0)
    for name in _D2D:
        changes.setdefault(name, getattr(p, name) * d2d)
    for name in _C2C:
        changes.setdefault(name, getattr(p, name) * c2c)
    if "stuck_rate" in values:
        changes.setdefault("stuck_high_rate", values["stuck_rate"] / 2)
        changes.setdefault("stuck_low_rate", values["stuck_rate"] / 2)
    return dataclasses.replace(p, **changes)


def point_recipes(point: Point, config: ChipConfig, level_codes):
    """The P&V recipes of a point: {target code: PVSettings} for igvva_levels, else one PVSettings."""
    from .host.recipes import IGVVA_REGISTERS, level_recipes
    from .models.recipes import reference_recipe
    registers = dict(IGVVA_REGISTERS, window=point["window"], max_pulses=point["max_pulses"],
                     reads_log2=int(point["verify_reads"]).bit_length() - 1, confirm=int(point["confirm"]))
    algorithm = point["algorithm"]
    if algorithm == "ispva":
        # bench/pv_cosim.py's ISPVA: the gate fixed above the top level's compliance, the top electrode
        # ramped from below V_set.
        registers.update(algorithm=0, bl_start=70, bl_step=point["step"], bl_stop=200, wl_start=165, wl_step=0,
                         wl_stop=165)
        return reference_recipe(registers, config)
    registers.update(wl_step=point["step"])
    if algorithm == "igvva":
        return reference_recipe(registers, config)
    return level_recipes(config, level_codes, registers, verify_reads=int(point["verify_reads"]),
                         confirm=bool(point["confirm"]), widen=point["widen"] or None)


# ---- the design -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Design:
    kind: str = "grid"                       # "grid" or "random"
    vary: dict = field(default_factory=dict)  # axis name -> tuple of values or Range
    chips: int = 1
    points: int = 1                          # random: parameter combinations drawn
    seed: int = 1

    def combinations(self) -> list[dict]:
        """Each parameter combination, in the design's order."""
        if self.kind == "grid":
            axes = [[(name, v) for v in _grid_values(name, values)] for name, values in self.vary.items()]
            return [dict(combo) for combo in itertools.product(*axes)]
        return [self._draw(k) for k in range(self.points)]

    def _draw(self, k: int) -> dict:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(k, 1)))
        drawn = {}
        for name, values in self.vary.items():      # always one draw per axis, in the design's order
            axis = axes()[name]
            if isinstance(values, Range) and axis.kind is int:
                drawn[name] = int(rng.integers(int(values.low), int(values.high) + 1))
            elif isinstance(values, Range):
                drawn[name] = float(values.low + rng.random() * (values.high - values.low))
            else:
                drawn[name] = values[int(rng.integers(len(values)))]
        return drawn

    def all_points(self) -> list[Point]:
        seeds = [chip_seed(self.seed, chip) for chip in range(self.chips)]
        return [Point(k * self.chips + chip, chip, seeds[chip], combo)
                for k, combo in enumerate(self.combinations()) for chip in range(self.chips)]

    @property
    def size(self) -> int:
        combos = self.points if self.kind == "random" else math.prod(
            len(_grid_values(name, values)) for name, values in self.vary.items())
        return combos * self.chips

    def check(self, config: ChipConfig, level_codes) -> list[Point]:
        """Every point of the design, each built as the workers will build it; DesignError for the first
        that cannot be, before any work starts."""
        if self.kind not in ("grid", "random"):
            raise DesignError(f"kind = {self.kind!r}: a design is 'grid' or 'random'")
        for name, count in (("chips", self.chips), ("points", self.points)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise DesignError(f"{name} = {count!r}: needs a whole number of at least 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < SEED_LIMIT:
            raise DesignError(f"seed = {self.seed!r}: seeds go from 0 to {SEED_LIMIT - 1}")
        if self.kind == "grid":
            for name, values in self.vary.items():
                if isinstance(values, Range) and values.n is None:
                    raise DesignError(f"{name}: a grid needs the number of values of a range (low:high:n, "
                                      f"or n = ... in a design file); low:high alone is for --random")
        if self.size > POINTS_MAX:
            raise DesignError(f"the design has {self.size:,} points, more than {POINTS_MAX:,}: split the campaign")
        from .models.device import ModelInputError
        points = self.all_points()
        devices, recipes = set(), set()          # each distinct device and recipe is built once
        for point in points:
            device = tuple((k, v) for k, v in point.values.items() if k not in RECIPE_AXES)
            recipe = tuple(point[k] for k in RECIPE_AXES)
            if device in devices and recipe in recipes:
                continue
            shown = ", ".join(f"{k} = {v}" for k, v in point.values.items()) or "the reference device"
            try:
                if device not in devices:
                    point.device_params()
                if recipe not in recipes:
                    built = point_recipes(point, config, level_codes)
                    for each in (built.values() if isinstance(built, dict) else (built,)):
                        each.check_codes(config)
            except ModelInputError as error:
                raise DesignError(f"point {point.index} ({shown}): {error}") from None
            devices.add(device)
            recipes.add(recipe)
        return points


def _grid_values(name: str, values) -> tuple:
    if not isinstance(values, Range):
        return values
    axis = axes()[name]
    spaced = np.linspace(values.low, values.high, values.n or 1)
    if axis.kind is int:
        return tuple(dict.fromkeys(int(round(v)) for v in spaced))
    return tuple(float(v) for v in spaced)


def chip_seed(seed: int, chip: int) -> int:
    """The device seed of chip `chip` of a campaign seeded `seed` (32 bits: AnalogMacro's generators)."""
    return int(np.random.SeedSequence(seed, spawn_key=(chip,)).generate_state(1)[0])


def design_from_toml(text: str, source: str = "design") -> Design:
    """A Design from a TOML file's text (the module's docstring shows one)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DesignError(f"{source}: not TOML: {error}") from None
    known = {"kind", "points", "chips", "seed", "vary"}
    extra = sorted(set(raw) - known)
    if extra:
        raise DesignError(f"{source}: unknown key(s) {', '.join(extra)}; a design has {', '.join(sorted(known))}")
    vary = raw.get("vary", {})
    if not isinstance(vary, dict):
        raise DesignError(f"{source}: vary is a table of axis = values")
    return Design(kind=raw.get("kind", "grid"), vary={name: _toml_values(name, v) for name, v in vary.items()},
                  chips=raw.get("chips", 1), points=raw.get("points", 1), seed=raw.get("seed", 1))
