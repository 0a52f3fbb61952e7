"""SPI frames as bytes: what a host sends for each transaction and how to read the answer.

Shared by every SPI master (the cocotb driver, the Amaranth-simulator tests, a board link), so the frame
format lives in one place next to `rram_cim.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import (ADDRESS_BITS, ADDRESS_BYTES, READ_DUMMY_BYTES, STATUS_MARKER, STATUS_MARKER_MASK,
                        Command)

__all__ = ["write_frame", "read_frame", "nop_frame", "Reply", "parse_reply", "LinkError"]


class LinkError(RuntimeError):
    """The SPI link answered something no chip would send (MISO stuck, wrong wiring, no power)."""


def _address_bytes(address: int) -> bytes:
    if not 0 <= address < (1 << ADDRESS_BITS):
        raise ValueError(f"address {address:#x} does not fit the {ADDRESS_BITS}-bit SPI address")
    return address.to_bytes(ADDRESS_BYTES, "big")


def write_frame(address: int, data: bytes) -> bytes:
    return bytes([Command.WRITE]) + _address_bytes(address) + bytes(data)


def read_frame(address: int, length: int) -> bytes:
    if length < 0:
        raise ValueError(f"read length {length} is negative")
    return bytes([Command.READ]) + _address_bytes(address) + bytes(READ_DUMMY_BYTES + length)


def nop_frame() -> bytes:
    return bytes([Command.NOP])


@dataclass(frozen=True)
class Reply:
    status: int
    data: bytes


def parse_reply(frame: bytes, miso: bytes) -> Reply:
    """Split what MISO carried during `frame` into the status byte and the read data (if a read)."""
    if not frame:
        raise ValueError("an empty frame has no reply: a frame holds at least its command byte")
    if len(miso) != len(frame):
        raise ValueError(f"reply has {len(miso)} bytes for a {len(frame)}-byte frame")
    status = miso[0]
    if status & STATUS_MARKER_MASK != STATUS_MARKER:
        raise LinkError(f"status byte {status:#04x} lacks the marker bits "
                        f"{STATUS_MARKER:#04x}/{STATUS_MARKER_MASK:#04x}: is the chip powered and wired?")
    header = 1 + ADDRESS_BYTES + READ_DUMMY_BYTES
    data = miso[header:] if frame[0] == Command.READ else b""
    return Reply(status, bytes(data))
