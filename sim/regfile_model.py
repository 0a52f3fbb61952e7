"""A transaction-level model of the chip's SPI target and register file: the scoreboard's reference.

It applies the frame rules of docs/spi.md to the register table generated from the SystemRDL source, so
what it knows about addresses, access and reset values comes from the same place as the RTL decoder.
"""

from __future__ import annotations

from collections import deque

from ..config import REFERENCE, ChipConfig
from ..protocol import ADDRESS_BYTES, READ_DUMMY_BYTES, STATUS_MARKER, Command, Register, StatusBit, Window
from ..rtl.regmap.generate import load_generated

__all__ = ["RegisterFileModel", "FrameResult"]

ERROR_REGISTER = "error"
#: The input FIFO's burst window: byte pairs push events like the FIFO.spike_in register.
BURST_IN = "spike_in_burst"
#: The output FIFO's burst window: byte pairs read (and pop) events like the FIFO.spike_out register.
BURST_OUT = "spike_out_burst"
HEADER_BYTES = 1 + ADDRESS_BYTES


class FrameResult:
    """What the host should see for one frame: the status byte and the bytes of read data it clocked."""

    def __init__(self, status: int, data: bytes):
        self.status = status
        self.data = data

    def __repr__(self):
        return f"FrameResult(status={self.status:#04x}, data={self.data.hex()})"


class RegisterFileModel:
    def __init__(self, config: ChipConfig = REFERENCE):
        self.config = config
        self.table = load_generated(config)[1].TABLE
        self._windows: dict[str, bytearray] = {w.name: bytearray(w.size) for w in self.table.windows}
        self.spike_in: deque[int] = deque()
        self.spike_out: deque[int] = deque()
        self.reset()

    def reset(self) -> None:
        """What the chip's `rst` does: registers back to their reset values, both spike FIFOs empty. The
        windows keep their bytes: they are block RAM, which a reset does not clear (rtl/block_ram.py), so a
        second test in one simulator run finds what the first one wrote."""
        self._values: dict[str, int] = {r.name: r.reset for r in self.table.registers if not r.external}
        self.spike_in.clear()
        self.spike_out.clear()
        self._spike_in_low = 0
        self._holding = 0                  # the decoder's holding register of counters' upper bytes

    def load_window(self, name: str, offset: int, data: bytes) -> None:
        """Take `data` as the window's bytes from `offset` on: the model seeded from what the chip holds."""
        window = self._windows[name]
        if offset < 0 or offset + len(data) > len(window):
            raise ValueError(f"bytes {offset}..{offset + len(data)} do not fit window {name} ({len(window)} bytes)")
        window[offset:offset + len(data)] = data

    # ---- state the host can observe ------------------------------------------------------------------
    def register(self, name: str) -> int:
        self._refresh_hardware_fields()
        return self._values[name]

    def window(self, name: str) -> bytes:
        return bytes(self._windows[name])

    def _error_bits(self) -> int:
        return self._values[ERROR_REGISTER]

    def status_byte(self) -> int:
        status = STATUS_MARKER
        if self._error_bits():
            status |= StatusBit.ERROR
        if self.spike_out:
            status |= StatusBit.OUT_READY
        return status

    def _set_error(self, field: str):
        bit = self.table.register(ERROR_REGISTER).field(field)
        self._values[ERROR_REGISTER] |= bit.mask

    def _refresh_hardware_fields(self):
        """Fields that hardware drives: recomputed from the model's state, as the RTL drives them live."""
        hardware = {
            "status": (1 if self._error_bits() else 0) | (int(bool(self.spike_out)) << 3),
            "fifo_in_level": len(self.spike_in),
            "fifo_out_level": len(self.spike_out),
            # No engine runs under this model (CTRL is not written): both P&V slots free, slot 0 next.
            "pv_stream": self.table.register("pv_stream").field("ready").mask,
        }
        for name, value in hardware.items():
            self._values[name] = value

    # ---- one byte on the bus -------------------------------------------------------------------------
    def _locate(self, address: int):
        return self.table.locate(address)

    def _readable_byte(self, address: int) -> int:
        item, offset = self._locate(address)
        if item.name == BURST_IN:
            return 0                                   # the FIFO's write side has nothing to read
        if item.name == BURST_OUT:
            offset %= 2
            return (self.spike_out[0] >> (8 * offset)) & 0xFF if self.spike_out else 0
        if isinstance(item, Window):
            return self._windows[item.name][offset]
        if item.name == "fifo_spike_out":
            return (self.spike_out[0] >> (8 * offset)) & 0xFF if self.spike_out else 0
        if item.external or not item.sw_readable:
            return 0
        self._refresh_hardware_fields()
        readable = sum(f.mask for f in item.fields if f.sw_readable and not f.single_pulse)
        return ((self._values[item.name] & readable) >> (8 * offset)) & 0xFF

    def _fetch(self, address: int, fetched: dict) -> None:
        """The target fetches a read byte ahead of its slot (rtl/spi_target.py): the fetch of a counter's
        byte 0 loads the holding register, and bytes 1.. are the holding register's, as fetched then."""
        where = self._locate(address)
        if where is None:
            return                                      # no strobe for an unmapped address
        item, offset = where
        if isinstance(item, Register) and item.snapshotted:
            if offset == 0:
                value = self._readable_byte(address) | sum(
                    self._readable_byte(address + byte) << (8 * byte) for byte in range(1, item.size))
                self._holding = value >> 8
                fetched[address] = value & 0xFF
            else:
                fetched[address] = (self._holding >> (8 * (offset - 1))) & 0xFF

    def _commit_read(self, address: int):
        item, offset = self._locate(address)
        if (item.name == "fifo_spike_out" and offset == 1) or (item.name == BURST_OUT and offset % 2):
            if self.spike_out:
                self.spike_out.popleft()
            else:
                self._set_error("out_underflow")

    def _writable(self, item: Register | Window, offset: int) -> bool:
        if isinstance(item, Window):
            return item.sw_writable
        return item.sw_writable            # reserved bytes of a writable register ignore writes

    def _write_byte(self, item: Register | Window, offset: int, data: int):
        if item.name in ("fifo_spike_in", BURST_IN):
            if offset % 2 == 0:
                self._spike_in_low = data
            elif len(self.spike_in) < self.config.input_fifo_depth:
                self.spike_in.append(self._spike_in_low | data << 8)
            else:
                self._set_error("in_overflow")
            return
        if isinstance(item, Window):
            self._windows[item.name][offset] = data
            return
        byte_mask = 0xFF << (8 * offset)
        value = self._values[item.name]
        for f in item.fields:
            bits = f.mask & byte_mask
            if not (f.sw_writable and bits):
                continue
            incoming = (data << (8 * offset)) & bits
            if f.write_one_to_clear:
                value &= ~incoming
            elif f.single_pulse:
                value &= ~bits          # reads back as zero; the pulse itself is not state
            else:
                value = (value & ~bits) | incoming
        self._values[item.name] = value

    def exchange(self, frame: bytes) -> bytes:
        """The model as a `FrameTransport`: what CIPO would carry during `frame`."""
        result = self.frame(frame)
        header = len(frame) - len(result.data) if frame and frame[0] == Command.READ else len(frame)
        return bytes([result.status] * header) + result.data

    # ---- one frame -----------------------------------------------------------------------------------
    def frame(self, frame: bytes, bits: int | None = None) -> FrameResult:
        """Apply `frame`, of which the host clocked `bits` bits before raising chip select (all if None)."""
        bits = 8 * len(frame) if bits is None else bits
        status = self.status_byte()
        complete, partial = divmod(bits, 8)
        partial = partial != 0
        data = bytearray()

        first_data = HEADER_BYTES + READ_DUMMY_BYTES

        def finish(truncated: bool):
            if truncated:
                self._set_error("truncated")
            # After an error the target shifts out zeros for whatever the host still clocks.
            if frame and frame[0] == Command.READ:
                data.extend(bytes(max(0, complete - first_data - len(data))))
            return FrameResult(status, bytes(data))

        if complete == 0:
            return finish(partial)
        command = frame[0]
        if command == Command.NOP:
            return finish(False)
        if command not in (Command.READ, Command.WRITE):
            self._set_error("bad_command")
            return finish(False)
        if complete < HEADER_BYTES:
            return finish(True)
        address = int.from_bytes(frame[1:HEADER_BYTES], "big")
        if self._locate(address) is None:
            self._set_error("bad_address")
            return finish(False)

        if command == Command.WRITE:
            for index in range(complete - HEADER_BYTES):
                where = self._locate(address + index)
                if where is None:
                    self._set_error("bad_address")
                    return finish(False)
                if not self._writable(*where):
                    self._set_error("read_only")
                    return finish(False)
                self._write_byte(*where, frame[HEADER_BYTES + index])
            return finish(partial)

        # Fetches run one slot ahead: the first byte once the address is in, the second after the dummy
        # byte, then one more after each byte clocked out (the last one past the end of the frame).
        fetched: dict[int, int] = {}
        self._fetch(address, fetched)
        if complete < first_data:
            return finish(partial)
        self._fetch(address + 1, fetched)
        slot = 0
        while True:
            started = complete > first_data + slot or (complete == first_data + slot and partial)
            if not started:
                return finish(False)
            if self._locate(address + slot) is None:
                self._set_error("bad_address")
                return finish(False)
            if complete == first_data + slot:          # the slot was cut
                return finish(True)
            data.append(fetched.get(address + slot, self._readable_byte(address + slot)))
            self._commit_read(address + slot)
            slot += 1
            self._fetch(address + slot + 1, fetched)
