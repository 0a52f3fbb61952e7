"""A memory window of the register map backed by block RAM (`lib.memory`), one byte per address."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .regbus import WindowPort

__all__ = ["MemoryWindow"]


class MemoryWindow(wiring.Component):
    """`depth` bytes behind a `WindowPort`, with a second port for the engine that owns the contents.

    The host side reads through a synchronous read port (its data arrives the cycle after `r_stb`, as
    the bus expects) and, if `host_writable`, writes through a write port. The engine side gets its own
    read port and, if `engine_writable`, a write port: P&V targets are written by the host and read by
    the engine; pulse counts and the failed-cell log the other way round.
    """

    def __init__(self, depth: int, *, host_writable: bool, engine_writable: bool):
        self._depth = depth
        self._host_writable = host_writable
        self._engine_writable = engine_writable
        addr_bits = max(1, (depth - 1).bit_length())
        members = {
            "host": In(WindowPort(addr_bits)),
            "engine_addr": In(addr_bits),
            "engine_r_data": Out(8),
        }
        if engine_writable:
            members |= {"engine_w_en": In(1), "engine_w_data": In(8)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = Memory(shape=8, depth=self._depth, init=[])

        host_read = memory.read_port()
        m.d.comb += [host_read.addr.eq(self.host.addr), host_read.en.eq(self.host.r_stb),
                     self.host.r_data.eq(host_read.data)]
        if self._host_writable:
            host_write = memory.write_port()
            m.d.comb += [host_write.addr.eq(self.host.addr), host_write.en.eq(self.host.w_stb),
                         host_write.data.eq(self.host.w_data)]

        engine_read = memory.read_port()
        m.d.comb += [engine_read.addr.eq(self.engine_addr), self.engine_r_data.eq(engine_read.data)]
        if self._engine_writable:
            engine_write = memory.write_port()
            m.d.comb += [engine_write.addr.eq(self.engine_addr), engine_write.en.eq(self.engine_w_en),
                         engine_write.data.eq(self.engine_w_data)]
        return m
