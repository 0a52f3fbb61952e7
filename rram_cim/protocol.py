"""The host protocol, defined once for the gateware, the host and the benches (DESIGN.md seam 2).

SPI mode 0 frames (docs/spi.md):

    NOP    0x00                                  -> status byte only
    WRITE  0x02  A[23:16] A[15:8] A[7:0]  D0 D1 ...   (address auto-increments)
    READ   0x03  A[23:16] A[15:8] A[7:0]  dummy  D0 D1 ...

While the host shifts the command, address and dummy bytes in, the chip shifts the status byte out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .config import ADDRESS_BITS

__all__ = ["Algorithm", "Scope", "Command", "EVENT_TICK", "EVENT_NEGATIVE", "input_event", "output_event",
           "decode_event", "ROUTE_ENTRY_BYTES", "ROUTE_TO_HOST", "ROUTE_TO_ROW", "pack_route", "LEVEL_ENTRY_BYTES", "LEVEL_FIELDS", "LEVEL_USED_BYTES", "pack_level", "ADDRESS_BYTES", "READ_DUMMY_BYTES", "STATUS_MARKER", "STATUS_MARKER_MASK",
           "StatusBit", "Field", "Register", "Window", "RegisterTable"]

ADDRESS_BYTES = ADDRESS_BITS // 8
#: One byte of turnaround between the address and the first read byte gives the target the time of
#: eight SPI bits to fetch from a synchronous memory, at any SCK up to f_sys / 4.
READ_DUMMY_BYTES = 1


class Algorithm(enum.IntEnum):
    """P&V algorithm, as `pv_mode.algorithm` encodes it (shared by the RTL engine and `models.pv`)."""
    ISPVA = 0       # fixed gate, stepped top-electrode voltage
    IGVVA = 1       # fixed top-electrode voltage, stepped gate


#: The per-level recipe table (window `pv_levels`): one entry of LEVEL_ENTRY_BYTES per level, each field at
#: (byte offset, bytes), little-endian. The same layout is described in rtl/regmap/rram_cim.rdl.
LEVEL_ENTRY_BYTES = 32
LEVEL_FIELDS = {
    "target": (0, 1), "pulse_width": (1, 1), "max_pulses": (2, 1), "window": (3, 1),
    "bl_start": (4, 2), "bl_step": (6, 2), "bl_stop": (8, 2),
    "wl_start": (10, 2), "wl_step": (12, 2), "wl_stop": (14, 2), "sl_reset": (16, 2),
}
#: Bytes of an entry the engine fetches (the rest are reserved).
LEVEL_USED_BYTES = max(offset + size for offset, size in LEVEL_FIELDS.values())


def pack_level(entry: dict) -> bytes:
    """One level's recipe (every LEVEL_FIELDS key) as its LEVEL_ENTRY_BYTES bytes."""
    missing = set(LEVEL_FIELDS) - set(entry)
    if missing:
        raise ValueError(f"level entry lacks {', '.join(sorted(missing))}")
    out = bytearray(LEVEL_ENTRY_BYTES)
    for name, (offset, size) in LEVEL_FIELDS.items():
        value = entry[name]
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"level entry {name} = {value} does not fit in {size} byte(s)")
        out[offset:offset + size] = int(value).to_bytes(size, "little")
    return bytes(out)


class Scope(enum.IntEnum):
    """What one P&V run covers, as `pv_mode.scope` encodes it."""
    CELL = 0
    ROW = 1
    CORE = 2


class Command(enum.IntEnum):
    NOP = 0x00
    WRITE = 0x02
    READ = 0x03


#: The status byte's top bits are a fixed marker (1, 0): a host seeing 0x00 or 0xFF knows MISO is dead.
STATUS_MARKER = 0b1000_0000
STATUS_MARKER_MASK = 0b1100_0000


class StatusBit(enum.IntFlag):
    """Low bits of the status byte: the same bits as the STATUS register."""
    ERROR = 1 << 0
    BUSY = 1 << 1
    PV_DONE = 1 << 2
    OUT_READY = 1 << 3
    INFER_DONE = 1 << 4


# ---- spike events (16 bits, through the spike FIFOs and the router) ------------------------------------
#: Input event: {tick[15], 0[14], core[13:10], row[9:0]}. A tick ends the host's input for a time step.
#: Output event: {tick[15], negative[14], core[13:10], neuron[9:0]}. A tick ends a time step's spikes.
EVENT_TICK = 1 << 15
EVENT_NEGATIVE = 1 << 14
EVENT_CORE_SHIFT = 10
EVENT_INDEX_MASK = (1 << EVENT_CORE_SHIFT) - 1
EVENT_CORE_MASK = 0xF


def input_event(core: int, row: int) -> int:
    """The input event that pulses `row` of `core` in the current time step."""
    if not (0 <= core <= EVENT_CORE_MASK and 0 <= row <= EVENT_INDEX_MASK):
        raise ValueError(f"input event core {core} row {row} does not fit the 16-bit event")
    return core << EVENT_CORE_SHIFT | row


def output_event(core: int, neuron: int, negative: bool) -> int:
    if not (0 <= core <= EVENT_CORE_MASK and 0 <= neuron <= EVENT_INDEX_MASK):
        raise ValueError(f"output event core {core} neuron {neuron} does not fit the 16-bit event")
    return (EVENT_NEGATIVE if negative else 0) | core << EVENT_CORE_SHIFT | neuron


def decode_event(word: int) -> tuple[bool, bool, int, int]:
    """(tick, negative, core, index) of an event word."""
    return (bool(word & EVENT_TICK), bool(word & EVENT_NEGATIVE), word >> EVENT_CORE_SHIFT & EVENT_CORE_MASK,
            word & EVENT_INDEX_MASK)


# ---- routing table (window `routing`) -------------------------------------------------------------------
#: One entry per (core, neuron, sign), sign 0 for positive spikes, at byte ((core * NEURONS + neuron) * 2 +
#: sign) * ROUTE_ENTRY_BYTES: {flags, destination core, destination row (16-bit little-endian)}.
ROUTE_ENTRY_BYTES = 4
ROUTE_TO_HOST = 1 << 0
ROUTE_TO_ROW = 1 << 1


def pack_route(to_host: bool, to_row: bool = False, core: int = 0, row: int = 0) -> bytes:
    if not (0 <= core <= EVENT_CORE_MASK and 0 <= row <= EVENT_INDEX_MASK):
        raise ValueError(f"route destination core {core} row {row} does not fit")
    flags = (ROUTE_TO_HOST if to_host else 0) | (ROUTE_TO_ROW if to_row else 0)
    return bytes([flags, core]) + row.to_bytes(2, "little")


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    reset: int
    sw_readable: bool
    sw_writable: bool
    #: "r": hardware reads the stored value; "w": hardware drives it; "na": a constant.
    hw: str
    #: Writing 1 clears the bit (sticky error flags).
    write_one_to_clear: bool = False
    #: A hardware strobe sets the field.
    hw_set: bool = False
    #: Reads back as 0 and pulses for one cycle when written with 1.
    single_pulse: bool = False
    description: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    #: Path below the top, joined with "_" (e.g. "pv_mode").
    name: str
    address: int
    size: int
    #: Implemented outside the decoder (e.g. a FIFO port): the decoder forwards a WindowPort.
    external: bool
    fields: tuple[Field, ...] = field(default_factory=tuple)
    description: str = ""

    @property
    def sw_readable(self) -> bool:
        return any(f.sw_readable for f in self.fields)

    @property
    def sw_writable(self) -> bool:
        return any(f.sw_writable for f in self.fields)

    @property
    def snapshotted(self) -> bool:
        """Wider than a byte and written live by hardware (a counter, a FIFO level): fetching byte 0 copies
        the upper bytes into the decoder's one holding register, which bytes 1.. then read (docs/spi.md)."""
        return not self.external and self.size > 1 and any(f.hw == "w" for f in self.fields)

    @property
    def reset(self) -> int:
        """The value a read returns after reset (write-only fields read as 0)."""
        return sum(f.reset << f.lsb for f in self.fields if f.sw_readable)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}; it has "
                       f"{', '.join(f.name for f in self.fields)}")


@dataclass(frozen=True)
class Window:
    """A memory window: `size` bytes from `address`, each byte one entry."""
    name: str
    address: int
    size: int
    sw_readable: bool
    sw_writable: bool
    description: str = ""


@dataclass(frozen=True)
class RegisterTable:
    registers: tuple[Register, ...]
    windows: tuple[Window, ...]

    def register(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register named {name!r} in the register map")

    def window(self, name: str) -> Window:
        for w in self.windows:
            if w.name == name:
                return w
        raise KeyError(f"no memory window named {name!r} in the register map")

    def locate(self, address: int) -> tuple[Register | Window, int] | None:
        """The register or window holding byte `address`, and the byte's offset in it; None if unmapped."""
        for item in (*self.registers, *self.windows):
            if item.address <= address < item.address + item.size:
                return item, address - item.address
        return None
