"""A memory window of the register map backed by block RAM (`lib.memory`), one byte per address."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .block_ram import block_ram, read_port
from .regbus import WindowPort

__all__ = ["MemoryWindow"]

# A window (or a slot of it) belongs to its engine while the engine owns it (`engine_owns`): a host read or
# write in that time is not carried out, reads as 0 and raises `host_refused` (for the ERROR register). So
# the host and the engine never touch one address in one cycle, which lets the block RAM leave such
# collisions undefined (`block_ram`). A read is refused when its byte reaches the host (`r_commit`), not
# when it is fetched: a burst fetches one byte past its last, which may lie in a slot the engine owns.


class MemoryWindow(wiring.Component):
    """`depth` bytes behind a `WindowPort`, with a second port for the engine that owns the contents.

    The host side reads with a synchronous read (its data arrives the cycle after `r_stb`, as the bus
    expects) and, if `host_writable`, writes. The engine side is a `lib.memory` read port (synchronous,
    `en` high unless driven) or, if `engine_writable`, a write port: P&V targets are written by the host
    and read by the engine; pulse counts and the failed-cell log the other way round.

    `slots` (a power of two) splits the window into that many equal slots, each owned on its own:
    `engine_owns` then has a bit per slot, and a host access is refused only in a slot the engine owns
    (the P&V slots: the host fills one while the engine programs from the other).

    `engine_reads` (with `engine_writable`) adds an engine read port, `engine_read`, beside its write port:
    state the engine steps in place (the stochastic neurons' LFSRs), seeded and read back by the host.
    """

    def __init__(self, depth: int, *, host_writable: bool, engine_writable: bool, slots: int = 1,
                 engine_reads: bool = False):
        if slots < 1 or slots & (slots - 1) or depth % slots:
            raise ValueError(f"slots must be a power of two dividing the depth {depth}, not {slots}")
        self._depth = depth
        self._host_writable = host_writable
        self._engine_writable = engine_writable
        self._slots = slots
        self._engine_reads = engine_reads and engine_writable
        addr_bits = max(1, ceil_log2(depth))
        # The engine reads what the host writes, or writes what the host reads.
        port = WritePort if engine_writable else ReadPort
        members = {
            "host": In(WindowPort(addr_bits)),
            "engine": Out(port.Signature(addr_width=addr_bits, shape=8)),   # the memory's side of the port
            "engine_owns": In(slots),
            "host_refused": Out(1),
        }
        if self._engine_reads:
            members["engine_read"] = Out(ReadPort.Signature(addr_width=addr_bits, shape=8))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        host = self.host
        owns = Signal()                 # the engine owns the slot the host addresses (a fetch, a write)
        owns_read = Signal()            # ... the slot of the byte the host has just been sent
        slot_bits = ceil_log2(self._slots)
        if slot_bits:
            slot_of = ceil_log2(self._depth) - slot_bits
            m.d.comb += [owns.eq(self.engine_owns.bit_select(host.addr[slot_of:slot_of + slot_bits], 1)),
                         owns_read.eq(self.engine_owns.bit_select(host.commit_addr[slot_of:slot_of + slot_bits], 1))]
        else:
            m.d.comb += [owns.eq(self.engine_owns), owns_read.eq(self.engine_owns)]
        refused_read = Signal()
        m.d.comb += self.host_refused.eq((owns & host.w_stb) | (owns_read & host.r_commit))
        m.d.sync += refused_read.eq(owns & host.r_stb)
        host_r_data = Signal(8)
        m.d.comb += host.r_data.eq(Mux(refused_read, 0, host_r_data))
        engine = self.engine

        m.submodules.memory = memory = block_ram(shape=8, depth=self._depth)
        host_read = read_port(m, memory, name="host_read")
        m.d.comb += [host_read.addr.eq(host.addr), host_read.en.eq(host.r_stb), host_r_data.eq(host_read.data)]
        if self._host_writable:
            host_write = memory.write_port()
            m.d.comb += [host_write.addr.eq(host.addr), host_write.en.eq(host.w_stb & ~owns),
                         host_write.data.eq(host.w_data)]
        if self._engine_writable:
            # The engine writes only where it owns: the whole window, or the slot it programs.
            engine_write = memory.write_port()
            m.d.comb += [engine_write.addr.eq(engine.addr), engine_write.en.eq(engine.en & self.engine_owns.any()),
                         engine_write.data.eq(engine.data)]
            if self._engine_reads:
                # The engine reads an entry before it writes it back, never in the same cycle.
                engine_read = read_port(m, memory, name="engine_read")
                m.d.comb += [engine_read.addr.eq(self.engine_read.addr), engine_read.en.eq(self.engine_read.en),
                             self.engine_read.data.eq(engine_read.data)]
        else:
            engine_read = read_port(m, memory, name="engine_read")
            m.d.comb += [engine_read.addr.eq(engine.addr), engine_read.en.eq(engine.en),
                         engine.data.eq(engine_read.data)]
        return m
