"""The host's serial transport: SPI frames to a board through its USB serial port and the FPGA's
UART-to-SPI-frame bridge (`fpga/uart_bridge.py`).

    chip = Chip(SerialTransport("/dev/ttyUSB1"))        # or SerialTransport() to find the board

Each frame goes out as its length (2 bytes, big-endian) and its bytes; as many bytes come back, what
CIPO carried. Any byte stream with `write(bytes)` and `read(n)` (returning fewer bytes on its timeout)
serves, so the cocotb bench drives the board top's UART pins with this same code.
"""

from __future__ import annotations

import time

from .frames import LinkError

__all__ = ["SerialTransport", "find_board_port", "frame_bytes", "MAX_FRAME"]

BAUD = 1_000_000
MAX_FRAME = 0xFFFF
#: USB vendor IDs of the boards' serial bridges: FTDI (iCEBreaker's FT2232H, ULX3S's FT231X).
FTDI_VID = 0x0403


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


class SerialTransport:
    """A `FrameTransport` over a serial port (a name, or an open byte stream)."""

    def __init__(self, port=None, baud: int = BAUD, timeout: float = 1.0):
        self.timeout = timeout
        self.frames = 0
        self.bytes = 0
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

    def exchange(self, frame: bytes) -> bytes:
        self.stream.write(frame_bytes(frame))
        reply = b""
        while len(reply) < len(frame):
            chunk = self.stream.read(len(frame) - len(reply))      # waits up to the stream's timeout
            reply += chunk
            if not chunk:
                raise LinkError(f"the board at {self.port} answered {len(reply)} of {len(frame)} bytes within "
                                f"{self.timeout} s: is it flashed with the chip (`rram-cim flash`)?")
        self.frames += 1
        self.bytes += len(frame)
        return reply

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
