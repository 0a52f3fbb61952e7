"""A memory window of the register map backed by block RAM (`lib.memory`), one byte per address."""

from typing import Callable

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
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
    expects) and, if `host_writable`, writes. The engine side is a `lib.memory` read port (synchronous,
    `en` high unless driven) or, if `engine_writable`, a write port: P&V targets are written by the host
    and read by the engine; pulse counts and the failed-cell log the other way round.

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
        # The engine reads what the host writes, or writes what the host reads.
        port = WritePort if engine_writable else ReadPort
        super().__init__({
            "host": In(WindowPort(addr_bits)),
            "engine": Out(port.Signature(addr_width=addr_bits, shape=8)),   # the memory's side of the port
            "engine_owns": In(1),
            "host_refused": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        host, owns = self.host, self.engine_owns
        refused_read = Signal()
        m.d.comb += self.host_refused.eq(owns & (host.r_stb | host.w_stb))
        m.d.sync += refused_read.eq(owns & host.r_stb)
        host_r_data = Signal(8)
        m.d.comb += host.r_data.eq(Mux(refused_read, 0, host_r_data))
        host_w_en = host.w_stb & ~owns if self._host_writable else 0
        engine = self.engine
        if self._ram is not None:
            m.submodules.ram = ram = self._ram(self._depth)
            m.d.comb += [ram.addr.eq(Mux(owns, engine.addr, host.addr)), host_r_data.eq(ram.r_data)]
            if self._engine_writable:
                m.d.comb += [ram.w_en.eq(host_w_en | (engine.en & owns)), ram.w_data.eq(engine.data)]
                if self._host_writable:
                    with m.If(~owns):
                        m.d.comb += ram.w_data.eq(host.w_data)
            else:
                m.d.comb += [ram.w_en.eq(host_w_en), ram.w_data.eq(host.w_data), engine.data.eq(ram.r_data)]
            return m

        m.submodules.memory = memory = block_ram(shape=8, depth=self._depth)
        host_read = read_port(m, memory, name="host_read")
        m.d.comb += [host_read.addr.eq(host.addr), host_read.en.eq(host.r_stb), host_r_data.eq(host_read.data)]
        if self._host_writable:
            host_write = memory.write_port()
            m.d.comb += [host_write.addr.eq(host.addr), host_write.en.eq(host_w_en),
                         host_write.data.eq(host.w_data)]
        if self._engine_writable:
            engine_write = memory.write_port()
            m.d.comb += [engine_write.addr.eq(engine.addr), engine_write.en.eq(engine.en & owns),
                         engine_write.data.eq(engine.data)]
        else:
            engine_read = read_port(m, memory, name="engine_read")
            m.d.comb += [engine_read.addr.eq(engine.addr), engine_read.en.eq(engine.en),
                         engine.data.eq(engine_read.data)]
        return m
