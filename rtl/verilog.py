"""Verilog out of the Amaranth design: the chip top or any named block, for any ChipConfig."""

from __future__ import annotations

from typing import Callable

from amaranth.back import verilog
from amaranth.lib import wiring

from ..config import REFERENCE, ChipConfig

__all__ = ["BLOCKS", "build_block", "to_verilog"]


def _chip(config):
    from .chip import Chip
    return Chip(config)


def _spi_target(config):
    from .spi_target import SPITarget
    return SPITarget()


def _register_decoder(config):
    from .regmap.generate import load_generated
    return load_generated(config)[0].RegisterDecoder()


def _cell_driver(config):
    from .cell_driver import CellDriver
    return CellDriver(config)


def _pv_engine(config):
    from .pv_engine import PVEngine
    return PVEngine(config)


def _inference(config):
    from .inference import InferenceSequencer
    return InferenceSequencer(config)


def _emulated_macro(config):
    # The FPGA's stand-in for the analog macro, alone behind its analog port.
    from ..fpga.emulated_macro import EmulatedMacro
    return EmulatedMacro(config)


def _fpga_uart(config):
    # The FPGA build: the chip and its emulated macro behind the UART bridge, as a board top holds it.
    from ..fpga.top import UartChip
    return UartChip(config)


#: Blocks that `rram-cim verilog --block NAME` can write, each built from a ChipConfig.

BLOCKS: dict[str, Callable[[ChipConfig], wiring.Component]] = {
    "chip": _chip,
    "spi_target": _spi_target,
    "register_decoder": _register_decoder,
    "cell_driver": _cell_driver,
    "pv_engine": _pv_engine,
    "inference": _inference,
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
    """Verilog text of `block`; its module is named `rram_cim_<block>`."""
    component = build_block(block, config)
    return verilog.convert(component, name=f"rram_cim_{block}", emit_src=False)
