"""The digits CNN's layers on the top rows of one core of a small chip, for co-simulation.

The CNN (`host.cnn_chip`) is planned for the neurram-like chip (256 x 256 cores); the simulator builds the
suite can afford are of the reference chip (2 cores of 64 x 64). Programming a whole core through the
co-simulation costs ~20 s of wall time, and the layers of a small network use far fewer rows. So a
network is planned by `host.cnn_chip.plan` itself (map_network, map_tiled, the threshold codes) on a
chip whose cores are the top `rows` rows of the small chip's cores, each layer on a core of its own
(`fitting_rows` finds the fewest rows at which every layer fits one), and each planned layer is then
placed on rows 0..rows-1 of one real core (`place`): only those rows are programmed, the rows below stay
formed and unprogrammed (~1 uS each, `DeviceParams.g_min_us`), never driven. Those idle cells add the
same small conductance to every sensed column (~2 % of its total, so a gain ~2 % below the plan's): the
layer keeps its balance and its threshold code, and the noise-free outputs (`MappedLayer.expected` on the
core's cells) count them exactly.

The layers run one after another on the same core, each programmed over the last (`CoreCNN.program`):
every layer is planned on the same number of rows, so each overwrites all of its predecessor's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig
from ..models.device import HFO2_1T1R
from .cnn import CNN, pixel_codes
from .cnn_chip import ChipCNN, MappedLayer, layer_patches, next_codes, plan
from .compiler import CompileError
from .tiling import Tile

__all__ = ["CoreCNN", "top_rows", "fitting_rows", "place", "plan_on_rows"]


def top_rows(config: ChipConfig, rows: int, cores: int) -> ChipConfig:
    """The chip `plan` sees: `cores` cores of the top `rows` rows of `config`'s (its columns and neurons)."""
    if not 1 <= rows <= config.rows:
        raise CompileError(f"rows = {rows}: a core of config '{config.name}' has 1..{config.rows}")
    return dataclasses.replace(config, name=f"{config.name}-top{rows}", rows=rows, cores=cores)


def fitting_rows(net: CNN, level_codes, config: ChipConfig, calibration_x) -> int:
    """The fewest top rows of a core of `config` at which `plan` puts every layer of `net` on one core
    (its inputs, one balance row at least, and what balancing its columns takes)."""
    widest = max(inputs for _, _, inputs, _ in net.settings.shapes())
    for rows in range(widest + 1, config.rows + 1):
        try:
            _, layers, _ = plan(net, level_codes, top_rows(config, rows, len(net.weights)), calibration_x)
        except CompileError:                    # a layer segmented over cores needs more than there are
            continue
        if all(len(layer.tiled.tiles) == 1 for layer in layers):
            return rows
    raise CompileError(f"a layer of the network ({[shape[2] for shape in net.settings.shapes()]} inputs) does not "
                       f"fit one {config.rows}-row core of config '{config.name}' with room to balance it")


def place(layer: MappedLayer, config: ChipConfig, core: int) -> MappedLayer:
    """A one-tile layer planned on the top rows (`top_rows`) as it lies on rows 0.. of `core` of `config`:
    the same cells, the rows below it unprogrammed (targets: the formed cells' code, levels: -1)."""
    if len(layer.tiled.tiles) != 1:
        raise CompileError(f"layer {layer.name} is {len(layer.tiled.tiles)} tiles: place one core's worth")
    tile = layer.tiled.tiles[0]
    mapping = tile.mapping
    rows, columns = mapping.targets.shape
    if columns != config.columns or rows > config.rows:
        raise CompileError(f"layer {layer.name}'s {rows}x{columns} cells do not fit a {config.rows}x{config.columns} "
                           f"core of config '{config.name}'")
    formed = int(round(HFO2_1T1R.g_min_us / config.us_per_adc_lsb))
    targets = np.full((config.rows, config.columns), formed, dtype=mapping.targets.dtype)
    levels = np.full((config.rows, config.columns), -1, dtype=mapping.levels.dtype)
    targets[:rows], levels[:rows] = mapping.targets, mapping.levels
    placed = dataclasses.replace(mapping, config=config, core=core, targets=targets, levels=levels)
    tiled = dataclasses.replace(layer.tiled, config=config, tiles=(Tile(placed, tile.rows, tile.pairs),))
    return MappedLayer(layer.name, tiled, layer.replicas)


def plan_on_rows(net: CNN, level_codes, config: ChipConfig, calibration_x, core: int = 0) -> CoreCNN:
    """`net` planned (`host.cnn_chip.plan`) on the fewest top rows that hold each layer on one core, every
    layer placed on `core` of `config`."""
    rows = fitting_rows(net, level_codes, config, calibration_x)
    planned, layers, codes = plan(net, level_codes, top_rows(config, rows, len(net.weights)), calibration_x)
    return CoreCNN(ChipCNN(planned, layers, codes), [place(layer, config, core) for layer in layers], rows, core)


@dataclass
class CoreCNN:
    """A planned network (`cnn`, on the top-rows chip) whose layers run in turn on the top `rows` rows of
    one core of a small chip (`layers`, placed there)."""
    cnn: ChipCNN
    layers: list[MappedLayer]
    rows: int
    core: int

    @property
    def network(self) -> CNN:
        return self.cnn.network

    def program(self, chip, k: int, recipes=None):
        """P&V of layer k's rows (the top `rows`, its weights, copies and balance rows) over the last layer's."""
        return chip.program(self.core, self.layers[k].tiled.tiles[0].mapping.targets[:self.rows], recipes)

    def mvm_settings(self, k: int) -> tuple[int, int, str, int]:
        """(in_bits, out_bits, conversion, threshold code) of layer k's MVMs, as `ChipCNN.run` runs them."""
        s = self.network.settings
        last = k == len(self.layers) - 1
        return self.cnn.in_bits(k), s.out_bits if last else s.act_bits, self.cnn.conversion, self.cnn.codes[k]

    def run(self, chip, k: int, patches) -> np.ndarray:
        """Layer k's MVMs of `patches` (..., inputs): outputs (..., outputs), integer ADC codes."""
        patches = np.asarray(patches)
        flat = patches.reshape(-1, patches.shape[-1])
        y = np.stack([self.layers[k].run(chip, p, *self.mvm_settings(k)) for p in flat])
        return y.reshape(patches.shape[:-1] + y.shape[-1:])

    def expected(self, k: int, patches, g_us) -> np.ndarray:
        """What noise-free cells `g_us` (the core's conductances) give `run` (`MappedLayer.expected`)."""
        patches = np.asarray(patches)
        _, out_bits, _, code = self.mvm_settings(k)
        y = np.stack([self.layers[k].expected(p, out_bits, code, {self.core: g_us})
                      for p in patches.reshape(-1, patches.shape[-1])])
        return y.reshape(patches.shape[:-1] + y.shape[-1:])

    def patches(self, k: int, digits=None, outputs=None) -> np.ndarray:
        """Layer k's MVM inputs (digits, positions, inputs): the pixels' patches of `digits` (0..1) for the
        first layer, else the patches (one for the dense layer) of layer k - 1's `outputs` (digits,
        positions, channels) pooled, clipped and shifted as `ChipCNN.run` does it."""
        s = self.network.settings
        if k == 0:
            a = pixel_codes(np.asarray(digits)).astype(np.int64).reshape(-1, s.image, s.image, 1)
        else:
            a = next_codes(s, outputs)
        return layer_patches(s, a, k == len(self.layers) - 1)
