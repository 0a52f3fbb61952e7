"""Block RAM whose read-during-write collisions are left undefined, so FPGA synthesis maps it as it is.

Amaranth's synchronous read port promises the old data when it reads, in the same cycle, the address a
write port writes. The iCE40's and ECP5's block RAMs do not promise that, so Yosys keeps the promise with
bypass logic: the write data and address in flip-flops, a comparator and a multiplexer per read port. On
the iCE40UP5K build that logic cost about 300 of the 5,280 logic cells.

Where the design never uses the result of such a read, `block_ram` marks the memory `no_rw_check` and
`read_port` builds the port as an asynchronous read plus an output register. Yosys merges the register
into the port and, for a memory so marked, drops the bypass. In simulation nothing changes: the register
samples the memory before the write lands, which is the old data, as before.

Each use states why its collisions never matter (the engine that owns a window; a macro state that reads
an entry it writes and discards that read).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib.memory import Memory

__all__ = ["block_ram", "read_port", "RegisteredRead"]

#: Yosys's memory attribute: a read that collides with a write returns an undefined value.
UNCHECKED_COLLISIONS = {"no_rw_check": 1}


def block_ram(*, shape, depth: int, init=()) -> Memory:
    """A `lib.memory.Memory` whose same-cycle read/write collisions are the design's to avoid."""
    return Memory(shape=shape, depth=depth, init=list(init), attrs=UNCHECKED_COLLISIONS)


@dataclass(frozen=True)
class RegisteredRead:
    """What a synchronous read port has: `addr` and `en` in, `data` out the cycle after."""
    addr: Signal
    en: Signal
    data: Signal


def read_port(m: Module, memory: Memory, *, domain: str = "sync", name: str = "read") -> RegisteredRead:
    """A synchronous read port of `memory` (made by `block_ram`): `data` is `memory[addr]` of the
    previous cycle, held while `en` is low (`en` starts high)."""
    port = memory.read_port(domain="comb")
    en = Signal(init=1, name=f"{name}_en")
    # No reset: the block RAM's output register has none (a reset would be emulated in logic).
    data = Signal(memory.shape, name=f"{name}_data", reset_less=True)
    with m.If(en):
        m.d[domain] += data.eq(port.data)
    return RegisteredRead(port.addr, en, data)
