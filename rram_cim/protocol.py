"""The host protocol, defined once for the gateware, the host and the benches (DESIGN.md seam 2).

SPI mode 0 frames (docs/spi.md):

    NOP    0x00                                  -> status byte only
    WRITE  0x02  A[23:16] A[15:8] A[7:0]  D0 D1 ...   (address auto-increments)
    READ   0x03  A[23:16] A[15:8] A[7:0]  dummy  D0 D1 ...

While the host shifts the command, address and dummy bytes in, the chip shifts the status byte out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data, enum

from .config import ADDRESS_BITS, ChipConfig

__all__ = ["Op", "Algorithm", "Scope", "NeuronMode", "NeuronReset", "Direction", "Conversion", "LFSR32_TAPS",
           "LFSR32_MASK", "NOISE_MAX", "NeuronCore", "unpack_neuron_cores", "pack_neuron_cores",
           "valid_member", "Command",
           "InputEvent", "OutputEvent", "EVENT_BITS", "EVENT_TICK", "EVENT_NEGATIVE", "input_event", "output_event",
           "decode_event",
           "RouteEntry", "ROUTE_ENTRY_BYTES", "ROUTE_TO_HOST", "ROUTE_TO_ROW", "pack_route", "unpack_route",
           "route_destinations",
           "route_offset", "routing_table_bytes",
           "DAC_FIELDS", "RECIPE_FIELDS", "LevelEntry", "LEVEL_ENTRY_BYTES", "LEVEL_FIELDS", "LEVEL_USED_BYTES",
           "pack_level",
           "FailedLogEntry", "FAILED_LOG_ENTRY_BYTES", "unpack_failed_log",
           "ADDRESS_BYTES", "READ_DUMMY_BYTES", "STATUS_MARKER", "STATUS_MARKER_MASK", "FTDI_VID",
           "StatusBit", "Field", "Register", "Window", "RegisterTable"]

ADDRESS_BYTES = ADDRESS_BITS // 8
#: One byte of turnaround between the address and the first read byte gives the target the time of
#: eight SPI bits to fetch from a synchronous memory, at any SCK up to f_sys / 4.
READ_DUMMY_BYTES = 1
#: USB vendor ID of the boards' serial bridges: FTDI (iCEBreaker's FT2232H, ULX3S's FT231X). The host
#: finds the board's port by it, the flash command the board.
FTDI_VID = 0x0403


# ---- enumerations: RTL signal shapes (viewed as `EnumView`), plain ints to the host and the models -------
# `IntEnum` so that numpy arrays, cocotb handles and register values compare with the members directly;
# `view_class=EnumView` so that a signal of the shape in the RTL only compares with its own members.
class Op(enum.IntEnum, shape=3, view_class=enum.EnumView):
    """The analog port's operation (`AnalogPort.op`), and the kind of a pulse in the models' logs."""
    IDLE = 0
    READ = 1       # bit line at a read voltage, no pulse: what a verify senses through
    SET = 2        # top electrode pulsed, gate sets the compliance
    RESET = 3      # source line pulsed, gate on
    FORM = 4       # first SET of a pristine cell, at forming voltage
    INFER = 5      # the inference sequencer or the MVM sequencer drives rows and neurons
    TRIM = 6       # one cycle: a neuron's comparator trim is written (`trim_index`, `trim_code`)


class Algorithm(enum.IntEnum, shape=2, view_class=enum.EnumView):
    """P&V algorithm, as `pv_mode.algorithm` encodes it (shared by the RTL engine and `models.pv`)."""
    ISPVA = 0       # fixed gate, stepped top-electrode voltage
    IGVVA = 1       # fixed top-electrode voltage, stepped gate
    RADAR = 2       # coarse gate ramp, then bit-line SET and source-line RESET ramps around the window


class Scope(enum.IntEnum, shape=2, view_class=enum.EnumView):
    """What one P&V run covers, as `pv_mode.scope` encodes it."""
    CELL = 0
    ROW = 1
    CORE = 2


class NeuronMode(enum.IntEnum, shape=2, view_class=enum.EnumView):
    """The neuron bank's mode, as a CORE page's `mode.kind` and the port's `neuron_cores` carry it."""
    IF = 0      # integrate and fire, membrane reset to zero after a spike
    LIF = 1     # the same with a leak towards zero each step
    ADC = 2     # reset by subtracting the threshold, no refractory: the spike count digitizes the input


class NeuronReset(enum.IntEnum, shape=1, view_class=enum.EnumView):
    """What an IF or LIF neuron's membrane does after a spike, as a CORE page's `reset.subtract` carries it
    (ADC mode always subtracts)."""
    ZERO = 0        # back to zero (SPIRIT's neurons, NIR's IF/LIF with v_reset = 0)
    SUBTRACT = 1    # minus the threshold crossed: what lay beyond it carries over (snnTorch's, Sinabs's)


class Direction(enum.IntEnum, shape=1, view_class=enum.EnumView):
    """Which way an MVM runs through a core (docs/mvm.md)."""
    FORWARD = 0     # drive the rows, sense the column pairs
    BACKWARD = 1    # drive the column pairs (+y on G+, -y on G-), sense the rows


class Conversion(enum.IntEnum, shape=1, view_class=enum.EnumView):
    """How a neuron turns its membrane into a multi-bit output after an MVM (docs/mvm.md)."""
    COUNT = 0       # partial reset: one threshold subtracted per step, the steps counted
    SAR = 1         # successive approximation: 2^b thresholds compared and subtracted at bit b


# ---- the stochastic neurons of an MVM's decide mode (docs/mvm.md, models/stochastic.py) -----------------
#: x^32 + x^22 + x^2 + x + 1: a maximal-length (period 2^32 - 1) feedback polynomial from the tap table of
#: Xilinx application note XAPP052 (P. Alfke, "Efficient Shift Registers, LFSR Counters, and Long Pseudo-
#: Random Sequence Generators", 1996); its period is proven in tests/test_rbm.py.
LFSR32_TAPS = (32, 22, 2, 1)
#: Its Galois mask, bit t - 1 for tap t: 0x80200003.
LFSR32_MASK = sum(1 << (t - 1) for t in LFSR32_TAPS)
#: Largest draw count K and magnitude M (MVM.noise, 4 bits each).
NOISE_MAX = 15


# ---- one core's neuron settings (a CORE page of the map, and the analog port's `neuron_cores`) ----------
#: Thresholds in threshold LSBs (ChipConfig.threshold_volts_per_lsb), leak in 1/256 of the membrane per
#: step, refractory period in time steps. The port carries one per page of neuron settings
#: (ChipConfig.neuron_pages), page p at bits [p * NeuronCore.size, (p + 1) * NeuronCore.size).
NeuronCore = data.StructLayout({"thresh_pos": 16, "thresh_neg": 16, "leak": 8, "refractory": 8, "mode": NeuronMode,
                                "reset": NeuronReset})


def unpack_neuron_cores(word: int, pages: int) -> list[dict[str, int]]:
    """Each page's settings, as plain integers, from the port's `neuron_cores` bit vector."""
    size = NeuronCore.size
    return [{name: (word >> (page * size + field.offset)) & ((1 << field.width) - 1) for name, field in NeuronCore}
            for page in range(pages)]


def pack_neuron_cores(pages: list[dict[str, int]]) -> int:
    """The port's `neuron_cores` bit vector of each page's settings (the inverse of `unpack_neuron_cores`)."""
    return sum(int(NeuronCore.const(dict(page)).as_bits()) << (index * NeuronCore.size)
               for index, page in enumerate(pages))


def valid_member(value, enum_type):
    """Whether `value` (a register field in the RTL) encodes one of `enum_type`'s members."""
    return value.matches(*enum_type)


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
    MVM_DONE = 1 << 5


# ---- spike events (16 bits, through the spike FIFOs and the router) ------------------------------------
# Six core bits and eight row (neuron) bits: NeuRRAM's 48 cores of 256 rows (Wan et al., Nature 608, 2022)
# in one 16-bit event, so a FIFO entry and an SPI transfer stay two bytes. ChipConfig holds cores, rows and
# neurons to what fits.
#: Input event: a tick ends the host's input for a time step; otherwise it pulses `row` of `core`.
InputEvent = data.StructLayout({"row": 8, "core": 6, "reserved": 1, "tick": 1})
#: Output event: a tick ends a time step's spikes; otherwise neuron `neuron` of `core` spiked.
OutputEvent = data.StructLayout({"neuron": 8, "core": 6, "negative": 1, "tick": 1})
assert InputEvent.size == OutputEvent.size
EVENT_BITS = InputEvent.size
EVENT_TICK = OutputEvent.const({"tick": 1}).as_bits()
EVENT_NEGATIVE = OutputEvent.const({"negative": 1}).as_bits()


def _fits(layout: data.StructLayout, name: str, value: int) -> bool:
    return 0 <= value < 1 << layout[name].width


# An inference packs and unpacks thousands of events per digit: the fields' offsets and widths are read
# from the layouts once here (building an Amaranth Const per event cost ~15 us, a sixth of a co-simulated
# digit's host time).
_IN_ROW, _IN_CORE = InputEvent["row"], InputEvent["core"]
_OUT_NEURON, _OUT_CORE = OutputEvent["neuron"], OutputEvent["core"]
_OUT_NEGATIVE, _OUT_TICK = OutputEvent["negative"], OutputEvent["tick"]


def _field(word: int, field: data.Field) -> int:
    return (word >> field.offset) & ((1 << field.width) - 1)


def _below(field: data.Field) -> int:
    return 1 << field.width


def input_event(core: int, row: int) -> int:
    """The input event that pulses `row` of `core` in the current time step."""
    if not (0 <= core < _below(_IN_CORE) and 0 <= row < _below(_IN_ROW)):
        raise ValueError(f"input event core {core} row {row} does not fit the {EVENT_BITS}-bit event")
    return core << _IN_CORE.offset | row << _IN_ROW.offset


def output_event(core: int, neuron: int, negative: bool) -> int:
    if not (0 <= core < _below(_OUT_CORE) and 0 <= neuron < _below(_OUT_NEURON)):
        raise ValueError(f"output event core {core} neuron {neuron} does not fit the {EVENT_BITS}-bit event")
    return core << _OUT_CORE.offset | neuron << _OUT_NEURON.offset | int(bool(negative)) << _OUT_NEGATIVE.offset


def decode_event(word: int) -> tuple[bool, bool, int, int]:
    """(tick, negative, core, index) of an event word."""
    return (bool(_field(word, _OUT_TICK)), bool(_field(word, _OUT_NEGATIVE)), _field(word, _OUT_CORE),
            _field(word, _OUT_NEURON))


# ---- routing table (window `routing`) -------------------------------------------------------------------
#: One entry per (core, neuron, sign), sign 0 for positive spikes, at `route_offset`: where a spike goes
#: (to the host's output FIFO, and/or as input events in the next step to `row` of cores `core` to
#: `core + copies`: a layer whose neurons are split over several cores takes each input on every one of
#: them, as NeuRRAM segments a layer's columns over cores).
RouteEntry = data.StructLayout({"to_host": 1, "to_row": 1, "copies": 6, "core": 8, "row": 16})
ROUTE_ENTRY_BYTES = RouteEntry.size // 8
#: The flags byte's bits (the entry's first byte).
ROUTE_TO_HOST = RouteEntry.const({"to_host": 1}).as_bits()
ROUTE_TO_ROW = RouteEntry.const({"to_row": 1}).as_bits()


def route_offset(neurons: int, core, neuron, negative):
    """Byte offset of the entry of neuron `neuron` of `core`'s spikes of sign `negative` (ints, or Amaranth
    values in the RTL), in a table of `neurons` neurons per core."""
    return ((core * neurons + neuron) * 2 + negative) * ROUTE_ENTRY_BYTES


def routing_table_bytes(config: ChipConfig) -> int:
    return config.cores * config.neurons * 2 * ROUTE_ENTRY_BYTES


def pack_route(to_host: bool, to_row: bool = False, core: int = 0, row: int = 0, copies: int = 0) -> bytes:
    """A routing entry: to the host, and/or to `row` of cores `core` .. `core + copies`."""
    # Each destination becomes an input event: it must fit one.
    if not (_fits(RouteEntry, "copies", copies) and _fits(InputEvent, "core", core + copies)
            and _fits(InputEvent, "core", core) and _fits(InputEvent, "row", row)):
        raise ValueError(f"route destination cores {core}..{core + copies} row {row} do not fit")
    entry = RouteEntry.const({"to_host": int(bool(to_host)), "to_row": int(bool(to_row)), "core": core, "row": row,
                              "copies": copies})
    return entry.as_bits().to_bytes(ROUTE_ENTRY_BYTES, "little")


def route_destinations(entry, fanout: bool = True) -> list[tuple[int, int]]:
    """The (core, row) input events a routing entry (`unpack_route`'s) sends a spike to, in the order the
    router queues them; none unless `to_row`. A router without fan-out (`ChipConfig.route_fanout` off)
    reads copies as 0."""
    if not entry.to_row:
        return []
    if not fanout:
        return [(int(entry.core), int(entry.row))]
    # The router counts the entry's 8-bit core field up: a raw entry near 255 wraps (pack_route refuses one).
    wrap = 1 << RouteEntry["core"].width
    return [((int(entry.core) + copy) % wrap, int(entry.row)) for copy in range(int(entry.copies) + 1)]


def unpack_route(entry: bytes):
    """A routing entry's fields (`.to_host`, `.to_row`, `.core`, `.row`, `.copies`) from its ROUTE_ENTRY_BYTES
    bytes."""
    return RouteEntry.from_bits(int.from_bytes(entry, "little"))


# ---- P&V recipes and the per-level table (window `pv_levels`) -------------------------------------------
#: The DAC codes of a recipe: top-electrode (bit-line) and gate (word-line) ramps, the RESET source line.
DAC_FIELDS = ("bl_start", "bl_step", "bl_stop", "wl_start", "wl_step", "wl_stop", "sl_reset")
#: A pulse's width (cycles), the pulse budget and the verify window (ADC codes): one byte each.
PULSE_FIELDS = ("pulse_width", "max_pulses", "window")
#: The recipe fields a per-level entry sets (all but the target), and what the P&V registers hold besides
#: the mode bits and the selection.
RECIPE_FIELDS = DAC_FIELDS + PULSE_FIELDS
#: One level's entry: LEVEL_ENTRY_BYTES bytes, little-endian fields (also described in rtl/regmap/rram_cim.rdl).
LEVEL_ENTRY_BYTES = 32
_LEVEL_USED = {"target": 8, **{name: 8 for name in PULSE_FIELDS}, **{name: 16 for name in DAC_FIELDS}}
LevelEntry = data.StructLayout(_LEVEL_USED | {"reserved": 8 * LEVEL_ENTRY_BYTES - sum(_LEVEL_USED.values())})
#: Each field at (byte offset, bytes), as the engine fetches it byte by byte.
LEVEL_FIELDS = {name: (field.offset // 8, field.width // 8) for name, field in LevelEntry if name != "reserved"}
#: Bytes of an entry the engine fetches (the rest are reserved).
LEVEL_USED_BYTES = LevelEntry["reserved"].offset // 8


def pack_level(entry: dict) -> bytes:
    """One level's recipe (every LEVEL_FIELDS key) as its LEVEL_ENTRY_BYTES bytes."""
    missing = set(LEVEL_FIELDS) - set(entry)
    if missing:
        raise ValueError(f"level entry lacks {', '.join(sorted(missing))}")
    for name, (_, size) in LEVEL_FIELDS.items():
        if not _fits(LevelEntry, name, entry[name]):
            raise ValueError(f"level entry {name} = {entry[name]} does not fit in {size} byte(s)")
    packed = LevelEntry.const({name: int(entry[name]) for name in LEVEL_FIELDS})
    return packed.as_bits().to_bytes(LEVEL_ENTRY_BYTES, "little")


# ---- P&V slots (windows `pv_target`, `pv_pulses`, `pv_codes`) -------------------------------------------
#: Slots the P&V engine streams through: it programs from one while the host fills the other.
PV_SLOTS = 2
#: Widest packed target: an ADC code or a level index, one byte.
TARGET_BITS_MAX = 8


def pack_targets(values, bits: int) -> bytes:
    """Targets packed `bits` bits each, as `pv_target` holds them: value k is bits k*bits .. k*bits + bits - 1,
    counted from bit 0 of byte 0 (little-endian), the last byte padded with zeros."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if not 1 <= bits <= TARGET_BITS_MAX:
        raise ValueError(f"target bits must be 1-{TARGET_BITS_MAX}, not {bits}")
    if values.size and (values.min() < 0 or values.max() >= 1 << bits):
        raise ValueError(f"targets must be 0-{(1 << bits) - 1} to pack in {bits} bits, "
                         f"not {values.min()}-{values.max()}")
    spread = (values[:, None] >> np.arange(bits)) & 1
    return np.packbits(spread.reshape(-1).astype(np.uint8), bitorder="little").tobytes()


def unpack_targets(raw: bytes, bits: int, count: int) -> np.ndarray:
    """The first `count` targets of `raw` packed by `pack_targets`."""
    spread = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:count * bits]
    return (spread.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


def target_bits_for(largest: int) -> int:
    """Fewest bits that hold targets 0..largest (level indices 0..7 take 3)."""
    return max(1, int(largest).bit_length())


# ---- the failed-cell log (window `failed_log`) ----------------------------------------------------------
#: One entry per failed cell, in the order the engine met them; `valid` marks a written entry.
FailedLogEntry = data.StructLayout({"reserved": 1, "valid": 1, "core": 6, "row": 8, "column": 16})
FAILED_LOG_ENTRY_BYTES = FailedLogEntry.size // 8


def unpack_failed_log(raw: bytes) -> list[tuple[int, int, int]]:
    """(core, row, column) of each valid entry of a read of the failed-cell log."""
    cells = []
    for at in range(0, len(raw) - FAILED_LOG_ENTRY_BYTES + 1, FAILED_LOG_ENTRY_BYTES):
        entry = FailedLogEntry.from_bits(int.from_bytes(raw[at:at + FAILED_LOG_ENTRY_BYTES], "little"))
        if entry.valid:
            cells.append((int(entry.core), int(entry.row), int(entry.column)))
    return cells


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

    def pack(self, **values: int) -> int:
        """The register's value with fields `values` set (by name) and the others 0."""
        packed = 0
        for name, value in values.items():
            f = self.field(name)
            if not 0 <= value < 1 << f.width:
                raise ValueError(f"{self.name}.{name} = {value} does not fit {f.width} bits")
            packed |= value << f.lsb
        return packed

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
