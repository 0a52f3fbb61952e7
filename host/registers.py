"""Register access by name over any transport that moves SPI frames (co-simulation, board, model).

The addresses, sizes and fields come from the generated table (`host/registers_gen.py`), so host code
says `regs.write("pv_mode", algorithm=1)` and never spells an offset.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Protocol

import numpy as np

from ..protocol import ADDRESS_BYTES, READ_DUMMY_BYTES, Command, RegisterTable, StatusBit
from .frames import Reply, nop_frame, parse_reply, read_frame, write_frame

__all__ = ["FrameTransport", "RegisterClient", "ChipError", "IdentityError", "check_identity", "check_int", "check_seconds"]


class FrameTransport(Protocol):
    def exchange(self, frame: bytes) -> bytes:
        """Send one SPI frame, return what CIPO carried during it (same length)."""

    # Optional: `idle(seconds)` lets the chip's time pass (a co-simulation advances simulated time);
    # without it the host sleeps on the wall clock.


class ChipError(RuntimeError):
    """The chip flagged an error (ERROR register bits are named in the message)."""


class IdentityError(ChipError):
    """What answers on the link is not the chip the host's config and register table describe."""


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int, if it is one (a Python or numpy integer, not a bool or a float) within
    low..high; else a TypeError or ValueError naming `name` and what would be right."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} {value} is out of range: {span}")
    return value


def check_seconds(name: str, value, positive: bool = False) -> float:
    """A finite, non-negative (or positive) number of seconds; not a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} = {value} s: give a finite number of seconds "
                         f"{'above' if positive else 'at least'} 0")
    return value


#: The ChipConfig fields (and properties) the GEOMETRY registers (geometry_<field>) carry.
GEOMETRY = ("cores", "rows", "columns", "neurons", "dac_bits", "adc_bits", "neuron_pages", "pv_verify_reads",
            "pv_algorithms", "mvm_lines", "output_burst", "mvm_decide")


def _geometry_text(values: dict) -> str:
    return (f"{values['cores']}x{values['rows']}x{values['columns']} ({values['neurons']} neurons, "
            f"{values['dac_bits']}-bit DAC, {values['adc_bits']}-bit ADC, "
            f"{values['neuron_pages']} page(s) of neuron settings, up to {values['pv_verify_reads']} "
            f"read(s) averaged per verify, P&V algorithms {values['pv_algorithms']:#05b}, "
            f"{values['mvm_lines']} MVM lines, output burst {'on' if values['output_burst'] else 'off'}, "
            f"stochastic neurons {'on' if values['mvm_decide'] else 'off'})")


def check_identity(regs: "RegisterClient", config) -> None:
    """Read CHIP.id, the register map version and the geometry once per client and config, and raise
    IdentityError naming what differs from what the host expects. Until this passes, the numbers a link
    returns mean nothing: a port that answers a valid status byte and random data would otherwise be
    "programmed" and report millions of failed cells."""
    if regs.identified == config:
        return
    where = getattr(regs.transport, "port", None) or type(regs.transport).__name__
    expected_id = regs.table.register("chip_id").reset
    chip_id = regs._read("chip_id")
    if chip_id != expected_id:
        raise IdentityError(f"the device on {where} answers chip id {chip_id:#06x}, not {expected_id:#06x}: "
                            f"it is not an rram-cim chip, or the link garbles data")
    version_register = regs.table.register("version")
    version, expected = regs._read("version"), version_register.reset
    if version != expected:
        def text(v):
            return ".".join(str((v & version_register.field(f).mask) >> version_register.field(f).lsb)
                            for f in ("major", "minor"))
        raise IdentityError(f"the chip on {where} has register map version {text(version)}, this host's "
                            f"table (host/registers_gen.py) is version {text(expected)}: flash the chip "
                            f"and the host from the same source")
    chip = {name: regs._read(f"geometry_{name}") for name in GEOMETRY}
    wanted = {name: getattr(config, name) for name in GEOMETRY}
    if chip != wanted:
        raise IdentityError(f"the chip on {where} answers geometry {_geometry_text(chip)}, the config "
                            f"{config.name!r} says {_geometry_text(wanted)}")
    regs.identified = config


class RegisterClient:
    """Registers and windows by name over a `FrameTransport`: `read("pv_cells_done")`,
    `write("pv_mode", algorithm=1, scope=1)`, `read_window("pv_codes", offset, n)`, `status()`,
    `wait_done(...)`, `errors()`.

    What it owns: the generated register table (addresses, sizes, fields, access) and the link's frame
    rules (status byte, sticky errors raised as `ChipError` after each access unless tolerated, the chip's
    identity once checked). It knows nothing of P&V or inference. How it is verified: against the
    register-file model and through every host test (tests/test_host.py, tests/test_chip_arguments.py,
    tests/test_serial_link.py), and in cocotb wherever the host drives the chip.
    """

    def __init__(self, transport: FrameTransport, table: RegisterTable):
        self.transport = transport
        self.table = table
        #: The ChipConfig the chip behind `transport` was last found to be (`check_identity`).
        self.identified = None
        #: ERROR bits that do not raise: a caller that expects them (the inference runner expects dropped
        #: events, which it counts) sets this; each one seen is cleared and recorded in `noticed`.
        self.tolerate: frozenset[str] = frozenset()
        self.noticed: set[str] = set()
        #: The status byte of the last frame (sampled as that frame began).
        self.last_status = 0
        self._batched = 0                  # depth of `batched()` blocks
        self._unchecked = False            # an access whose errors the next frame's status byte tells
        #: The link's traffic from this client: frames, every byte clocked (both directions move together),
        #: and the bytes that carry something down (a write frame whole; a read's command, address and
        #: dummy; a NOP), which is what a bench compares with the information sent.
        self.frames = 0
        self.bytes_clocked = 0
        self.bytes_sent = 0
        self._sent_at: dict[int | None, int] = {}   # `bytes_sent` by a frame's start address (None: a NOP)

    def _frame(self, frame: bytes) -> Reply:
        reply = parse_reply(frame, self.transport.exchange(frame))
        self.frames += 1
        self.bytes_clocked += len(frame)
        sent = (1 + ADDRESS_BYTES + READ_DUMMY_BYTES) if frame[0] == Command.READ else len(frame)
        self.bytes_sent += sent
        # Counted by address here; named only when asked (`sent_to`), off the path every frame takes.
        at = int.from_bytes(frame[1:1 + ADDRESS_BYTES], "big") if frame[0] != Command.NOP else None
        self._sent_at[at] = self._sent_at.get(at, 0) + sent
        self.last_status = reply.status
        if self._unchecked:                # this frame's status byte is the verdict on the access before it
            self._unchecked = False
            self._verdict(reply.status)
        return reply

    def sent_to(self) -> dict[str, int]:
        """`bytes_sent` by the register or window each frame started at ("nop" for NOPs)."""
        named: dict[str, int] = {}
        for at, count in self._sent_at.items():
            where = self.table.locate(at) if at is not None else None
            name = "nop" if at is None else (where[0].name if where else "unmapped")
            named[name] = named.get(name, 0) + count
        return named

    @contextmanager
    def batched(self):
        """Inside, an access is not followed by a NOP: the status byte of the next frame, which the chip
        samples as that frame starts, says whether it set an error (and one NOP at the end checks the
        last). Half the frames; the price is that an error raises one access late, after the next access
        has acted. For sequences where that is harmless (feeding and draining FIFOs, polling, MVMs)."""
        self._batched += 1
        try:
            yield self
        finally:
            self._batched -= 1
        if not self._batched and self._unchecked:
            self._unchecked = False
            self._check()

    def _after_access(self) -> None:
        if self._batched:
            self._unchecked = True
        else:
            self._check()

    def _read(self, name: str) -> int:
        register = self.table.register(name)
        return int.from_bytes(self._frame(read_frame(register.address, register.size)).data, "little")

    def read(self, name: str) -> int:
        value = self._read(name)
        self._after_access()
        return value

    def read_many(self, *names: str) -> list[int]:
        """Registers that follow each other without a gap, read in one frame (a burst), in address order."""
        registers = [self.table.register(name) for name in names]
        for before, after in zip(registers, registers[1:]):
            if after.address != before.address + before.size:
                raise ValueError(f"{before.name} and {after.name} are not adjacent: a burst cannot span them")
        data = self._frame(read_frame(registers[0].address, sum(r.size for r in registers))).data
        self._after_access()
        values, offset = [], 0
        for register in registers:
            values.append(int.from_bytes(data[offset:offset + register.size], "little"))
            offset += register.size
        return values

    def write(self, name: str, value: int | None = None, **fields: int) -> None:
        """Write a whole register (`value`) or some of its fields (the others keep their value)."""
        register = self.table.register(name)
        if value is None:
            value = self.read(name) if len(fields) < len(register.fields) else 0
            for field_name, field_value in fields.items():
                field = register.field(field_name)
                if not 0 <= field_value < (1 << field.width):
                    raise ValueError(f"{name}.{field_name} = {field_value} does not fit {field.width} bits")
                value = (value & ~field.mask) | (field_value << field.lsb)
        if not 0 <= value < (1 << (8 * register.size)):
            raise ValueError(f"{name} = {value:#x} does not fit {register.size} bytes")
        self._frame(write_frame(register.address, value.to_bytes(register.size, "little")))
        self._after_access()

    def read_window(self, name: str, offset: int, length: int) -> bytes:
        window = self.table.window(name)
        self._check_range(window, offset, length)
        reply = self._frame(read_frame(window.address + offset, length))
        self._after_access()
        return reply.data

    def write_window(self, name: str, offset: int, data: bytes) -> None:
        window = self.table.window(name)
        self._check_range(window, offset, len(data))
        self._frame(write_frame(window.address + offset, data))
        self._after_access()

    @staticmethod
    def _check_range(window, offset, length):
        if offset < 0 or length < 0 or offset + length > window.size:
            raise ValueError(f"bytes {offset}..{offset + length} do not fit window {window.name} "
                             f"({window.size} bytes)")

    def status(self) -> int:
        """The status byte (StatusBit flags), from one NOP frame."""
        return self._frame(nop_frame()).status

    def idle(self, seconds: float) -> None:
        """Let `seconds` of the chip's time pass (simulated time in co-simulation) before the next frame."""
        wait = getattr(self.transport, "idle", None)
        if wait is not None:
            wait(seconds)
        else:
            time.sleep(seconds)

    def wait_done(self, done: StatusBit, abort: str | None, timeout_seconds: float, poll_seconds: float,
                  between: Callable[[], None] | None = None, what: str = "the engine") -> None:
        """Poll the status byte until `done` is set and BUSY clear, calling `between` (host work such as
        feeding a FIFO) after each check that finds it still running. Past `timeout_seconds` of the
        chip's time, write CTRL.`abort` (an engine that has one) and raise ChipError."""
        def finished() -> bool:
            status = self.status()
            return bool(status & done and not status & StatusBit.BUSY)
        self.poll_until(finished, abort, timeout_seconds, poll_seconds, between, f"{what} did not finish")

    def poll_until(self, finished: Callable[[], bool], abort: str | None, timeout_seconds: float,
                   poll_seconds: float, between: Callable[[], None] | None = None,
                   failure: str = "the engine did not finish") -> None:
        """Call `finished` (a poll of the chip) until it says so, calling `between` after each miss and
        letting `poll_seconds` of the chip's time pass. Past `timeout_seconds`, write CTRL.`abort` (an
        engine that has one) and raise ChipError("`failure` within ... s")."""
        waited = 0.0
        while not finished():
            if waited > timeout_seconds:
                if abort is None:
                    raise ChipError(f"{failure} within {timeout_seconds} s")
                self.write("ctrl", self.table.register("ctrl").field(abort).mask)
                raise ChipError(f"{failure} within {timeout_seconds} s; stopped")
            if between is not None:
                between()
            self.idle(poll_seconds)
            waited += poll_seconds

    def errors(self) -> list[str]:
        value = self._read("error")
        return [f.name for f in self.table.register("error").fields if value & f.mask]

    def clear_errors(self) -> None:
        register = self.table.register("error")
        self._frame(write_frame(register.address, b"\xff" * register.size))

    def _check(self) -> None:
        # The status byte is sampled at the start of a frame, so an error this frame caused shows in the
        # next one: a follow-up NOP tells whether it did.
        self._frame(nop_frame())
        self._verdict(self.last_status)

    def _verdict(self, status: int) -> None:
        """Raise ChipError for the ERROR bits `status` announces, unless tolerated (those are cleared and
        noted)."""
        if status & StatusBit.ERROR:
            errors = self.errors()
            fatal = [name for name in errors if name not in self.tolerate]
            if fatal:
                self.clear_errors()
                raise ChipError(f"chip flagged {', '.join(errors)}")
            register = self.table.register("error")
            bits = sum(register.field(name).mask for name in errors)
            self._frame(write_frame(register.address, bits.to_bytes(register.size, "little")))
            self.noticed.update(errors)
