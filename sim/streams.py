"""Drive and receive Amaranth `lib.stream` ports from cocotb: payloads packed by their data layout."""

from __future__ import annotations

from amaranth.hdl import Shape
from cocotb.triggers import FallingEdge

__all__ = ["pack", "unpack", "StreamSource", "StreamSink"]


def pack(layout, **values) -> int:
    """Pack field values into the integer a `data.StructLayout` port carries."""
    word = 0
    names = {name for name, _ in layout}
    unknown = set(values) - names
    if unknown:
        raise KeyError(f"layout has no field(s) {sorted(unknown)}")
    for name, field in layout:
        width = Shape.cast(field.shape).width
        value = int(values.get(name, 0))
        if not 0 <= value < (1 << width):
            raise ValueError(f"{name} = {value} does not fit {width} bits")
        word |= value << field.offset
    return word


def unpack(layout, word: int) -> dict[str, int]:
    return {name: (word >> field.offset) & ((1 << Shape.cast(field.shape).width) - 1) for name, field in layout}


class _StreamPins:
    """A stream's `<prefix>valid/ready/payload` pins. Inputs change at falling edges, so they are stable
    at the rising edge that samples them on every simulator."""

    def __init__(self, dut, prefix: str, layout):
        self.clk = dut.clk
        self.layout = layout
        self.valid = getattr(dut, f"{prefix}valid")
        self.ready = getattr(dut, f"{prefix}ready")
        self.payload = getattr(dut, f"{prefix}payload")


class StreamSource(_StreamPins):
    """Sends payloads into a stream input of the DUT."""

    def __init__(self, dut, prefix: str, layout):
        super().__init__(dut, prefix, layout)
        self.valid.value = 0
        self.payload.value = 0

    async def send(self, **values):
        await FallingEdge(self.clk)
        while not int(self.ready.value):
            await FallingEdge(self.clk)
        self.payload.value = pack(self.layout, **values)
        self.valid.value = 1
        await FallingEdge(self.clk)            # the rising edge in between took it
        self.valid.value = 0


class StreamSink(_StreamPins):
    """Takes payloads from a stream output of the DUT."""

    def __init__(self, dut, prefix: str, layout):
        super().__init__(dut, prefix, layout)
        self.ready.value = 0

    async def receive(self, timeout_cycles: int = 10_000) -> dict[str, int]:
        for _ in range(timeout_cycles):
            await FallingEdge(self.clk)
            if int(self.valid.value):
                values = unpack(self.layout, int(self.payload.value))
                self.ready.value = 1
                await FallingEdge(self.clk)
                self.ready.value = 0
                return values
        raise TimeoutError(f"no response within {timeout_cycles} cycles")
