"""A memory window of the register map backed by block RAM (`lib.memory`), one byte per address."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .regbus import WindowPort
from .single_port_ram import SinglePortRAM

__all__ = ["MemoryWindow"]

# An FPGA's large RAMs can be single-ported (the iCE40UP5K's SPRAM): `single_port=True` gives the memory
# one address, the engine's while `engine_owns` (the engine runs and owns its windows), else the host's.
# A host access in that time is refused (`host_refused`, for the ERROR register) and reads as 0.


class MemoryWindow(wiring.Component):
    """`depth` bytes behind a `WindowPort`, with a second port for the engine that owns the contents.

    The host side reads through a synchronous read port (its data arrives the cycle after `r_stb`, as
    the bus expects) and, if `host_writable`, writes through a write port. The engine side gets its own
    read port and, if `engine_writable`, a write port: P&V targets are written by the host and read by
    the engine; pulse counts and the failed-cell log the other way round.
    """

    def __init__(self, depth: int, *, host_writable: bool, engine_writable: bool, single_port: bool = False):
        self._depth = depth
        self._host_writable = host_writable
        self._engine_writable = engine_writable
        self._single_port = single_port
        addr_bits = max(1, (depth - 1).bit_length())
        members = {
            "host": In(WindowPort(addr_bits)),
            "engine_addr": In(addr_bits),
            "engine_r_data": Out(8),
        }
        if engine_writable:
            members |= {"engine_w_en": In(1), "engine_w_data": In(8)}
        if single_port:
            # While the engine owns the memory (it runs), host accesses are not carried out.
            members |= {"engine_owns": In(1), "host_refused": Out(1)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        if self._single_port:
            return self._elaborate_single_port(m)
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

    def _elaborate_single_port(self, m):
        m.submodules.ram = ram = SinglePortRAM(self._depth)
        host, owns = self.host, self.engine_owns
        refused_read = Signal()
        m.d.comb += [ram.addr.eq(Mux(owns, self.engine_addr, host.addr)), self.engine_r_data.eq(ram.r_data),
                     self.host_refused.eq(owns & (host.r_stb | host.w_stb)),
                     host.r_data.eq(Mux(refused_read, 0, ram.r_data))]
        m.d.sync += refused_read.eq(owns & host.r_stb)
        if self._engine_writable:
            m.d.comb += [ram.w_en.eq(owns & self.engine_w_en), ram.w_data.eq(self.engine_w_data)]
        if self._host_writable:
            with m.If(~owns):
                m.d.comb += [ram.w_en.eq(host.w_stb), ram.w_data.eq(host.w_data)]
        return m
