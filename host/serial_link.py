"""The host's serial transport: SPI frames to a board through its USB serial port and the FPGA's
UART-to-SPI-frame bridge (`fpga/uart_bridge.py`).

    chip = Chip(SerialTransport("/dev/ttyUSB1"))        # or SerialTransport() to find the board

Each frame goes out as its length (2 bytes, big-endian) and its bytes; as many bytes come back, what
CIPO carried. Any byte stream with `write(bytes)` and `read(n)` (returning fewer bytes on its timeout)
serves, so the cocotb bench drives the board top's UART pins with this same code.
"""

from __future__ import annotations

import time

from ..protocol import FTDI_VID
from .frames import LinkError, parse_reply, read_frame
from .registers_gen import TABLE

__all__ = ["SerialTransport", "find_board_port", "frame_bytes", "MAX_FRAME"]

BAUD = 1_000_000
MAX_FRAME = 0xFFFF
#: What the transport reads to check it is back in step after a lost reply, and how many tries it gets.
PROBE = TABLE.register("chip_id")
RESYNC_PROBES = 3


def frame_bytes(frame: bytes) -> bytes:
    if not 1 <= len(frame) <= MAX_FRAME:
        raise ValueError(f"a frame has 1..{MAX_FRAME} bytes, not {len(frame)}")
    return len(frame).to_bytes(2, "big") + bytes(frame)


def find_board_port() -> str:
    """The serial port of the one FTDI bridge plugged in (the iCEBreaker's has two interfaces: the
    second is the UART)."""
    from serial.tools import list_ports
    ports = sorted(p.device for p in list_ports.comports() if p.vid == FTDI_VID)
    if not ports:
        raise LinkError("no board found: no FTDI USB serial port is present. Plug the board in (and flash it "
                        "with `rram-cim flash`), or name its port")
    return ports[-1]


def _probe_answered(probe: bytes, reply: bytes) -> bool:
    """The probe's reply is whole: status bytes that agree, then the chip's identifier."""
    if len(reply) != len(probe):
        return False
    try:
        data = parse_reply(probe, reply).data
    except LinkError:
        return False
    header = len(probe) - PROBE.size
    return len(set(reply[:header])) == 1 and int.from_bytes(data, "little") == PROBE.fields[0].reset


class SerialTransport:
    """A `FrameTransport` over a serial port (a name, or an open byte stream).

    Each frame has one deadline: `timeout` plus the time its bytes take on the line both ways, however
    they trickle in. That holds for a pyserial-like port (one with a settable `timeout`, given what is
    left before each read); a simulated stream (the cocotb UART) has no wall clock and keeps its own
    timeout in simulated time, per read.

    A reply that misses its deadline may still arrive, and would be taken for the next frame's. So after
    a short reply the transport owes the board a resynchronisation, done before the next frame: the rest
    of the late reply is read and dropped, the input buffer flushed, and a probe (a read of CHIP.id,
    which changes nothing) must come back whole and right before the frame goes out."""

    def __init__(self, port=None, baud: int = BAUD, timeout: float = 1.0):
        self.timeout = timeout
        self.baud = baud
        self.frames = 0
        self.bytes = 0
        #: Bytes of the last reply that had not come when it was given up; None while in step.
        self._owed: int | None = None
        if port is None or isinstance(port, str):
            import serial
            name = port or find_board_port()
            try:
                self.stream = serial.Serial(name, baud, timeout=timeout)
            except (serial.SerialException, OSError) as error:
                raise LinkError(f"cannot open the board's serial port {name}: {error}") from None
            self.port = name
        else:
            self.stream, self.port = port, getattr(port, "name", "stream")
        self._wall_clock = hasattr(self.stream, "timeout") and not hasattr(self.stream, "idle")

    def frame_seconds(self, length: int) -> float:
        """A frame's deadline: the timeout, plus its bytes out (with the length) and back, 10 bits each."""
        return self.timeout + 10 * (2 * length + 2) / self.baud

    def exchange(self, frame: bytes) -> bytes:
        packet = frame_bytes(frame)
        if self._owed is not None:
            self._resync()
        reply = self._send(packet, len(frame))
        if len(reply) < len(frame):
            self._owed = len(frame) - len(reply)
            raise LinkError(f"the board at {self.port} answered {len(reply)} of {len(frame)} bytes within "
                            f"{self.frame_seconds(len(frame)):.3g} s: is it flashed with the chip "
                            f"(`rram-cim flash`)?")
        self.frames += 1
        self.bytes += len(frame)
        return reply

    def _send(self, packet: bytes, count: int) -> bytes:
        self.stream.write(packet)
        return self._receive(count, self.frame_seconds(count))

    def _receive(self, count: int, seconds: float) -> bytes:
        """Up to `count` bytes, as many as come within `seconds` (wall clock) or the stream's timeout."""
        deadline = time.monotonic() + seconds
        reply = b""
        while len(reply) < count:
            if self._wall_clock:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.stream.timeout = left
            chunk = self.stream.read(count - len(reply))
            if not chunk:
                break
            reply += chunk
        return reply

    def _flush(self) -> None:
        flush = getattr(self.stream, "reset_input_buffer", None)
        if flush is not None:
            flush()

    def _resync(self) -> None:
        owed, self._owed = self._owed, 0
        self._receive(owed, self.timeout)                  # the late reply's rest, dropped
        probe = read_frame(PROBE.address, PROBE.size)
        for _ in range(RESYNC_PROBES):
            self._flush()
            reply = self._send(frame_bytes(probe), len(probe))
            if _probe_answered(probe, reply):
                self._owed = None
                return
            self._owed = len(probe) - len(reply)
            self._receive(self._owed, self.timeout)
        raise LinkError(f"the board at {self.port} does not answer in step after a lost reply: {RESYNC_PROBES} "
                        f"reads of CHIP.id came back wrong or short. Reset the board (or replug it)")

    def idle(self, seconds: float) -> None:
        """Let the chip run: a simulated stream advances its simulation, a real port sleeps."""
        idle = getattr(self.stream, "idle", None)
        idle(seconds) if idle else time.sleep(seconds)

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
