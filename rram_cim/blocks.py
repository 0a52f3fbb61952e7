"""The blocks that `rram-cim verilog --block NAME` writes, by name, each built from a ChipConfig.

The registry lives at the top of the package, not in rtl/, because it names the FPGA's blocks too (the
emulated macro, the UART board top): rtl/ depends on the config and protocol only, and this module may
import everything.
"""

from __future__ import annotations

from typing import Callable

from amaranth.lib import wiring

from .config import REFERENCE, ChipConfig
from .rtl.verilog import convert

__all__ = ["BLOCKS", "build_block", "to_verilog"]


def _chip(config):
    from .rtl.chip import Chip
    return Chip(config)


def _chip_cosim(config):
    # What co-simulations build: the chip with a gateware SPI controller beside its pins (sim/cosim_chip.py).
    from .sim.cosim_chip import CosimChip
    return CosimChip(config)


def _spi_target(config):
    from .rtl.spi_target import SPITarget
    return SPITarget()


def _register_decoder(config):
    from .rtl.regmap.generate import load_generated
    return load_generated(config)[0].RegisterDecoder()


def _cell_driver(config):
    from .rtl.cell_driver import CellDriver
    return CellDriver(config)


def _pv_engine(config):
    from .rtl.pv_engine import PVEngine
    return PVEngine(config)


def _inference(config):
    from .rtl.inference import InferenceSequencer
    return InferenceSequencer(config)


def _mvm(config):
    from .rtl.mvm import MVMSequencer
    return MVMSequencer(config)


def _emulated_macro(config):
    # The FPGA's stand-in for the analog macro, alone behind its analog port.
    from .fpga.emulated_macro import EmulatedMacro
    return EmulatedMacro(config)


def _fpga_uart(config):
    # The FPGA build: the chip and its emulated macro behind the UART bridge, as a board top holds it.
    from .fpga.top import UartChip
    return UartChip(config)


#: Blocks that `rram-cim verilog --block NAME` can write, each built from a ChipConfig.

BLOCKS: dict[str, Callable[[ChipConfig], wiring.Component]] = {
    "chip": _chip,
    "chip_cosim": _chip_cosim,
    "spi_target": _spi_target,
    "register_decoder": _register_decoder,
    "cell_driver": _cell_driver,
    "pv_engine": _pv_engine,
    "inference": _inference,
    "mvm": _mvm,
    "emulated_macro": _emulated_macro,
    "fpga_uart": _fpga_uart,
}


def build_block(block: str, config: ChipConfig = REFERENCE) -> wiring.Component:
    try:
        factory = BLOCKS[block]
    except KeyError:
        raise ValueError(f"unknown block {block!r}; choose one of {', '.join(BLOCKS)}") from None
    return factory(config)


def to_verilog(block: str = "chip", config: ChipConfig = REFERENCE) -> str:
    """Verilog text of `block`; its module is named `rram_cim_<block>` (see `rtl.verilog.convert`)."""
    return convert(build_block(block, config), name=f"rram_cim_{block}")
