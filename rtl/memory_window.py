"""A memory window of the register map backed by block RAM (`lib.memory`), one byte per address."""

from typing import Callable

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .block_ram import block_ram, read_port
from .regbus import WindowPort
from .single_port_ram import SinglePortRAM

__all__ = ["MemoryWindow"]

# A window belongs to its engine while the engine runs (`engine_owns`): a host read or write in that
# time is not carried out, reads as 0 and raises `host_refused` (for the ERROR register). So the host
# and the engine never touch one address in one cycle, which lets the block RAM leave such collisions
# undefined (`block_ram`), and lets an FPGA whose large RAMs have one port (the iCE40UP5K's SPRAM) give
# the memory one address: the engine's while it owns the window, else the host's (a `ram` factory given).


class MemoryWindow(wiring.Component):
    """`depth` bytes behind a `WindowPort`, with a second port for the engine that owns the contents.

    The host side reads with a synchronous read (its data arrives the cycle after `r_stb`, as the bus
    expects) and, if `host_writable`, writes. The engine side reads and, if `engine_writable`, writes:
    P&V targets are written by the host and read by the engine; pulse counts and the failed-cell log the
    other way round.

    `ram`, if given, builds a single-port memory of a depth (`SinglePortRAM`'s ports and timing) that the
    window uses instead of a dual-port block RAM: an FPGA's vendor RAM (`fpga.spram`) comes in this way.
    """

    def __init__(self, depth: int, *, host_writable: bool, engine_writable: bool,
                 ram: Callable[[int], SinglePortRAM] | None = None):
        self._depth = depth
        self._host_writable = host_writable
        self._engine_writable = engine_writable
        self._ram = ram
        addr_bits = max(1, (depth - 1).bit_length())
        members = {
            "host": In(WindowPort(addr_bits)),
            "engine_addr": In(addr_bits),
            "engine_r_data": Out(8),
            "engine_owns": In(1),
            "host_refused": Out(1),
        }
        if engine_writable:
            members |= {"engine_w_en": In(1), "engine_w_data": In(8)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        host, owns = self.host, self.engine_owns
        refused_read = Signal()
        m.d.comb += self.host_refused.eq(owns & (host.r_stb | host.w_stb))
        m.d.sync += refused_read.eq(owns & host.r_stb)
        host_r_data = Signal(8)
        m.d.comb += host.r_data.eq(Mux(refused_read, 0, host_r_data))
        host_w_en = host.w_stb & ~owns if self._host_writable else 0
        engine_w_en = self.engine_w_en & owns if self._engine_writable else 0
        if self._ram is not None:
            m.submodules.ram = ram = self._ram(self._depth)
            m.d.comb += [ram.addr.eq(Mux(owns, self.engine_addr, host.addr)), self.engine_r_data.eq(ram.r_data),
                         host_r_data.eq(ram.r_data), ram.w_en.eq(host_w_en | engine_w_en),
                         ram.w_data.eq(self.engine_w_data if self._engine_writable else host.w_data)]
            if self._engine_writable and self._host_writable:
                with m.If(~owns):
                    m.d.comb += ram.w_data.eq(host.w_data)
            return m

        m.submodules.memory = memory = block_ram(shape=8, depth=self._depth)
        host_read = read_port(m, memory, name="host_read")
        m.d.comb += [host_read.addr.eq(host.addr), host_read.en.eq(host.r_stb), host_r_data.eq(host_read.data)]
        engine_read = read_port(m, memory, name="engine_read")
        m.d.comb += [engine_read.addr.eq(self.engine_addr), self.engine_r_data.eq(engine_read.data)]
        if self._host_writable:
            host_write = memory.write_port()
            m.d.comb += [host_write.addr.eq(host.addr), host_write.en.eq(host_w_en),
                         host_write.data.eq(host.w_data)]
        if self._engine_writable:
            engine_write = memory.write_port()
            m.d.comb += [engine_write.addr.eq(self.engine_addr), engine_write.en.eq(engine_w_en),
                         engine_write.data.eq(self.engine_w_data)]
        return m
