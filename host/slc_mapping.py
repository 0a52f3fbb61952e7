"""SPIRIT's mapping (issue 20, item 5): each weight a group of single-level cells, as an alternative to the
compiler's differential multilevel pairs.

SPIRIT (Valentian et al., "Fully Integrated Spiking Neural Network with Analog Neurons and RRAM Synapses",
IEDM 2019) stored integer weights -4..+4 on 1T1R cells used at two levels only (LRS and HRS): four cells
in parallel for the positive part of a weight and four more for the negative part, a weight being how many
of its group's cells are ON. Here a group of `group` cells per sign is `group` rows of the same column that
the same input drives together: a synapse of weight w has max(w, 0) ON cells in its neuron's + column and
max(-w, 0) in its - column (`counts_from_weights`), every other cell of both groups OFF. The group sums
conductances exactly as `models.crossbar.slc_group_conductance` does: c ON cells give c G_on + (group - c)
G_off.

What it costs on a core (`footprint`), and why the MLP shrinks:

- rows: `group` per input. The host drives all of an input's rows in the same step (`expand_raster`).
- columns: a hidden spike is routed to one row of the next core (one `protocol.RouteEntry` per neuron and
  sign), but a hidden input needs `group` rows there. So every hidden neuron is built `group` times (its
  replicas: column pairs with the same cells), replica q routed to row q of the neuron's group in the next
  core. A layer feeding another takes 2 x group columns (and `group` neuron slots) per neuron; the last
  layer 2 per neuron.
- On the reference chip's 64x64 cores (32 neurons each), group g therefore fits 64/g inputs and 32/g
  hidden neurons: 64-32-10 with single cells (g = 1: binary weights -1..1), 32-16-10 with pairs (g = 2,
  -2..2), 16-8-10 with SPIRIT's four (g = 4, -4..4). The digits are pooled to fit (`pool_digits`): 8x8 to
  8x4 to 4x4 pixels, each the mean of its block. A layer that does not fit is refused (`SlcFitError`),
  the message naming the limit and what would fit.

Training, in the chip's terms as `host.training` trains the multilevel network: a group behaves as one
"cell" of group + 1 evenly spaced levels (0..group cells ON), so the network is trained, quantization- and
noise-aware, on a group view of the core (rows / group group-rows, `group_config`), with each count's
conductance and spread from the measured ON and OFF cells (`measure_levels`, `group_levels`). Free
group-rows (never driven) set the column totals, as free rows do for the multilevel mapping.

Programming: every cell to one of two ADC codes (`SLC_CODES`: the multilevel table's lowest and highest
level, so both mappings span the same conductance range) through the same P&V model and per-level IGVVA
recipes (`host.recipes.level_recipes`). `binary_recipes` are the SLC memory's own option: each level's
window widened to half the gap, so a cell passes as soon as it reads on its side of the midpoint.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..config import ChipConfig
from ..models.macro import AnalogMacro
from ..models.pv import program_and_verify
from ..models.recipes import LEVELS
from ..protocol import ROUTE_ENTRY_BYTES, route_offset, unpack_route
from .compiler import CompileError, Layer, NetworkMapping, compile_network
from .training import Digits, TrainedNetwork, TrainSettings, train

__all__ = ["SPIRIT_GROUP", "SLC_CODES", "SlcFitError", "counts_from_weights", "footprint", "check_fit",
           "group_config", "group_levels", "measure_levels", "pool_digits", "expand_raster", "cell_layers",
           "compile_slc", "train_slc", "binary_recipes", "used_cells", "program_pulses"]

#: SPIRIT's group: four SLC cells per sign, weights -4..+4 (Valentian et al., IEDM 2019).
SPIRIT_GROUP = 4
#: OFF and ON as ADC codes: the multilevel table's lowest and highest level (10 and 115 uS at 0.5 uS/code).
SLC_CODES = (LEVELS[0], LEVELS[-1])


class SlcFitError(CompileError):
    """A layer's cell groups do not fit a core; the message names the limit and what would fit."""


def _whole(name: str, value, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise SlcFitError(f"{name} = {value!r}: a whole number, {low} or more")
    return int(value)


def counts_from_weights(weights, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed integer weights (inputs x neurons) within +-`group` as (plus, minus) ON-cell counts: w > 0 turns
    on w cells of the + group, w < 0 turns on -w cells of the - group, the other group all OFF."""
    group = _whole("group", group)
    weights = np.asarray(weights)
    if weights.ndim != 2 or not np.issubdtype(weights.dtype, np.integer):
        raise SlcFitError("weights must be a 2-D integer array (inputs x neurons)")
    if np.abs(weights).max(initial=0) > group:
        raise SlcFitError(f"weights reach {np.abs(weights).max()}; a group of {group} cells holds -{group}..{group}")
    return np.maximum(weights, 0), np.maximum(-weights, 0)


def footprint(inputs: int, neurons: int, group: int, feeds_next: bool) -> tuple[int, int, int]:
    """(rows, columns, neuron slots) a layer's groups take: `group` rows per input; a layer that feeds
    another builds each neuron `group` times (one replica per row of its group in the next core)."""
    replicas = group if feeds_next else 1
    return inputs * group, 2 * neurons * replicas, neurons * replicas


def check_fit(inputs: int, neurons: int, group: int, feeds_next: bool, config: ChipConfig, name: str = "layer") -> None:
    """Refuse a layer whose groups do not fit one core of `config`, naming the limit and what would fit."""
    inputs, neurons, group = _whole("inputs", inputs), _whole("neurons", neurons), _whole("group", group)
    rows, columns, slots = footprint(inputs, neurons, group, feeds_next)
    if rows > config.rows:
        raise SlcFitError(f"{name}: {inputs} inputs x a group of {group} cells = {rows} rows; a core has "
                          f"{config.rows}: at most {config.rows // group} inputs, or a group of at most "
                          f"{max(config.rows // inputs, 0)}")
    replicas = group if feeds_next else 1
    if slots > config.neurons or columns > config.columns:
        why = f" x {replicas} replicas (one per row of its group in the next core)" if feeds_next else ""
        raise SlcFitError(f"{name}: {neurons} neurons{why} = {slots} neurons; a core has {config.neurons}: at most "
                          f"{config.neurons // replicas} neurons")


def group_config(config: ChipConfig, group: int) -> ChipConfig:
    """The core seen by training: one row per group of `group` physical rows (the rows left over, if
    `group` does not divide them, stay OFF)."""
    group = _whole("group", group)
    if group > config.rows:
        raise SlcFitError(f"a group of {group} cells is taller than a core ({config.rows} rows)")
    return config.replace(rows=config.rows // group)


def group_levels(g_off_us: float, g_on_us: float, sd_off_us: float, sd_on_us: float, group: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(conductance, spread) in uS of a group with 0..`group` cells ON: c G_on + (group - c) G_off, and
    the spread of that sum of independent cells."""
    group = _whole("group", group)
    if not 0 < g_off_us < g_on_us:
        raise SlcFitError(f"OFF ({g_off_us} uS) and ON ({g_on_us} uS) must be positive, ON above OFF")
    on = np.arange(group + 1)
    return on * g_on_us + (group - on) * g_off_us, np.sqrt(on * sd_on_us ** 2 + (group - on) * sd_off_us ** 2)


def measure_levels(config: ChipConfig, codes, recipes, seed: int = 0, age_s: float = 86400.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, spread) in uS of cells programmed to each of `codes` with `recipes` on the device model and
    left `age_s` seconds: one core, the codes on equal shares of its cells."""
    array = AnalogMacro(config, seed).cores[0]
    codes = np.asarray(codes)
    targets = codes[np.arange(config.rows * config.columns).reshape(config.rows, config.columns) % len(codes)]
    program_and_verify(array, targets, recipes, config)
    array.relax(age_s)
    return (np.array([array.g_us[targets == c].mean() for c in codes]),
            np.array([array.g_us[targets == c].std() for c in codes]))


def binary_recipes(recipes: dict) -> dict:
    """Two-level recipes whose windows reach halfway to the other level (an OFF window never below code 1):
    verify as an SLC memory reads, on which side of the midpoint a cell sits."""
    codes = sorted(recipes)
    if len(codes) != 2:
        raise SlcFitError(f"binary recipes are for two levels, not {len(codes)}")
    half = (codes[1] - codes[0] - 1) // 2
    return {codes[0]: replace(recipes[codes[0]], window=min(half, codes[0] - 1)),
            codes[1]: replace(recipes[codes[1]], window=half)}


def pool_digits(data: Digits, inputs: int) -> Digits:
    """8x8 digits as `inputs` pixels (64, 32, 16, 8 or 4), each the mean of a block: 1x2 blocks, then 2x2,
    then 4x2, then 4x4 (rows x columns)."""
    blocks = {64: (1, 1), 32: (1, 2), 16: (2, 2), 8: (4, 2), 4: (4, 4)}
    if inputs not in blocks or data.train_x.shape[1] != 64:
        raise SlcFitError(f"pooling takes 8x8 digits to one of {sorted(blocks)} pixels, not {inputs}")
    h, w = blocks[inputs]

    def pool(x):
        return x.reshape(len(x), 8 // h, h, 8 // w, w).mean(axis=(2, 4)).reshape(len(x), inputs)
    return Digits(pool(data.train_x), data.train_y, pool(data.test_x), data.test_y)


def expand_raster(raster: np.ndarray, group: int) -> np.ndarray:
    """An input raster (steps, inputs) as the rows it drives: each input's spike on all `group` rows."""
    raster = np.asarray(raster)
    if raster.ndim != 2:
        raise SlcFitError(f"a raster is (steps, inputs), not shape {raster.shape}")
    return np.repeat(raster, _whole("group", group), axis=1)


def cell_layers(network: TrainedNetwork, group: int, config: ChipConfig) -> list[Layer]:
    """A group-view network (levels = ON counts per group, `group_config` rows) as the compiler's layers of
    single-level cells: levels 0 (OFF) and 1 (ON) on every physical row, a group's first c rows ON; hidden
    neurons built `group` times. Checks every layer fits (`check_fit`)."""
    group = _whole("group", group)
    if not isinstance(network, TrainedNetwork):
        raise SlcFitError(f"network must be a TrainedNetwork, not {type(network).__name__}")
    widths = [network.inputs] + [p.shape[1] for p in network.plus[:-1]]
    layers = []
    for k, (plus, minus, inputs) in enumerate(zip(network.plus, network.minus, widths)):
        feeds_next = k + 1 < len(network.plus)
        check_fit(inputs, plus.shape[1], group, feeds_next, config, f"layer {k}")
        if plus.shape[0] * group > config.rows:
            raise SlcFitError(f"layer {k} has {plus.shape[0]} group-rows of {group} cells; a core has "
                              f"{config.rows} rows")
        sides = []
        for counts in (plus, minus):
            counts = np.asarray(counts)
            if not np.issubdtype(counts.dtype, np.integer) or counts.min() < 0 or counts.max() > group:
                raise SlcFitError(f"layer {k}: ON counts must be integers 0..{group} (quantize the network first)")
            # row r * group + c of a group is ON when c < the group's count
            cells = (np.arange(group)[None, :, None] < counts[:, None, :]).reshape(-1, counts.shape[1])
            full = np.zeros((config.rows, counts.shape[1]), dtype=np.int64)
            full[:cells.shape[0]] = cells
            sides.append(np.repeat(full, group, axis=1) if feeds_next else full)
        layers.append(Layer(sides[0], sides[1], inputs * group))
    return layers


def compile_slc(network: TrainedNetwork, group: int, config: ChipConfig, codes=SLC_CODES) -> NetworkMapping:
    """Place a group-view network on the cores as SLC groups (OFF/ON at `codes`); its inputs take
    `expand_raster(raster, group)`. Layer k on core k, replica q of hidden neuron j routed to row
    j * group + q of the next core (the compiler's routing of neuron slot j * group + q)."""
    s = network.settings
    return compile_network(cell_layers(network, group, config), codes, config, s.threshold_code, s.v_read_code)


def train_slc(config: ChipConfig, data: Digits, group: int, cell_us, cell_sd_us,
              settings: TrainSettings = TrainSettings()) -> tuple[TrainedNetwork, TrainedNetwork]:
    """(float, quantized) group-view networks for `data`, trained as `host.training.train` trains the
    multilevel one, on `group_config` with a group's 0..`group` ON cells as its levels (`cell_us`,
    `cell_sd_us`: measured OFF and ON mean and spread). Refuses, before training, a shape that does not fit."""
    group = _whole("group", group)
    check_fit(data.train_x.shape[1], settings.hidden, group, True, config, "layer 0")
    check_fit(settings.hidden, int(data.train_y.max()) + 1, group, False, config, "layer 1")
    level_us, spread_us = group_levels(cell_us[0], cell_us[1], cell_sd_us[0], cell_sd_us[1], group)
    return train(group_config(config, group), data, level_us, settings, spread_us)


def used_cells(mapping: NetworkMapping) -> list[np.ndarray]:
    """Per core, the cells a mapping's layer uses: every row of the columns its neuron slots read (hidden
    neurons and their replicas, routed on; the last layer's outputs). The compiler leaves the rest of the
    core at the lowest level, which costs no weight."""
    config = mapping.config
    used = []
    for k, levels in enumerate(mapping.levels):
        if k == len(mapping.levels) - 1:
            slots = 1 + max(neuron for core, neuron in mapping.outputs if core == k)
        else:
            slots = max((n + 1 for n in range(config.neurons) if _routed_on(mapping, k, n)), default=0)
        mask = np.zeros(levels.shape, bool)
        mask[:, :2 * slots] = True
        used.append(mask)
    return used


def _routed_on(mapping: NetworkMapping, core: int, neuron: int) -> bool:
    at = route_offset(mapping.config.neurons, core, neuron, 0)
    return bool(unpack_route(mapping.routing[at:at + ROUTE_ENTRY_BYTES]).to_row)


def program_pulses(mapping: NetworkMapping, recipes, seed: int = 0) -> list[np.ndarray]:
    """Pulses (SET and RESET) each used cell of each core takes (`used_cells`; 0 elsewhere) when the
    mapping's targets are programmed with `recipes` on a fresh device model, the unused cells left alone."""
    config = mapping.config
    macro = AnalogMacro(config, seed)
    pulses = []
    for core, (targets, used) in enumerate(zip(mapping.targets, used_cells(mapping))):
        result = program_and_verify(macro.cores[core], np.where(used, targets, -1), recipes, config)
        pulses.append(np.where(used, result.pulses, 0))
    return pulses
