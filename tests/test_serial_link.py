"""The board path in co-simulation: the FPGA build's UART pins driven by the host's serial transport."""

import pathlib

import pytest

from rram_cim.host.frames import LinkError
from rram_cim.host.serial_link import SerialTransport, frame_bytes
from rram_cim.sim.runner import run_and_check

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_serial.py")


def test_serial_path_end_to_end(fpga_build):
    run_and_check(fpga_build, SCENARIO)


def test_frames_carry_their_length():
    assert frame_bytes(b"\x03\x00\x00\x00") == b"\x00\x04\x03\x00\x00\x00"
    with pytest.raises(ValueError, match="1..65535"):
        frame_bytes(b"")


def test_no_board_is_a_clear_error_not_a_hang():
    with pytest.raises(LinkError, match="cannot open the board's serial port /dev/does-not-exist"):
        SerialTransport("/dev/does-not-exist")


def test_the_fpga_build_serves_the_host_process_as_a_board_would(fpga_build):
    """`CosimTransport(block="fpga_uart")` (the demo's --transport fpga-sim): frames from this process
    go through the FPGA build's UART bridge in the simulator."""
    import numpy as np

    from rram_cim.config import REFERENCE
    from rram_cim.host.chip import Chip
    from rram_cim.sim.cosim_link import CosimError, CosimTransport
    from rram_cim.models.recipes import LEVELS

    with CosimTransport(config=REFERENCE, built=fpga_build, block="fpga_uart", log=lambda *_: None) as link:
        chip = Chip(link)
        result = chip.program(1, np.full((1, REFERENCE.columns), LEVELS[4]))
        assert result.cells_done >= REFERENCE.columns - 2 and result.mean_pulses > 1.5
        assert np.median(np.abs(result.codes - LEVELS[4])) <= 4
        with pytest.raises(CosimError, match="do not relax"):
            chip.relax(10)
        # MVMs through the emulated macro (an ideal neuron: exact). Trims alone move a neuron whose input is
        # zero: +50 / -50 LSB against a threshold of 10 counts +5 / -5; every other neuron reads 0.
        trims = np.zeros(REFERENCE.neurons, dtype=int)
        trims[:2] = (50, -50)
        chip.set_trims(0, trims)
        y = chip.mvm(0, np.zeros(REFERENCE.rows, int), "forward", in_bits=1, out_bits=4, threshold_code=10)
        assert list(y[:3]) == [5, -5, 0] and not y[2:].any()
        # Row 1 of core 1 programmed high-low on even column pairs and low-high on odd ones: an input on it
        # alone gives outputs of alternating sign forward; backward, inputs of alternating sign put charge
        # on row 1 only (rows 2-63 hold the cleared code on both columns of every pair: exactly 0).
        pattern = np.where(np.arange(REFERENCE.neurons) % 2, -1, 1)
        high_low = np.stack([np.where(pattern > 0, LEVELS[6], LEVELS[1]), np.where(pattern > 0, LEVELS[1], LEVELS[6])], 1)
        chip.program(1, high_low.reshape(1, REFERENCE.columns), first_row=1)
        x = np.zeros(REFERENCE.rows, int)
        x[1] = 3
        forward = chip.mvm(1, x, "forward", in_bits=2, out_bits=2, threshold_code=1)
        assert np.array_equal(np.sign(forward), pattern), forward
        backward = chip.mvm(1, pattern, "backward", in_bits=1, out_bits=2, conversion="sar", threshold_code=1)
        assert backward[1] > 0 and not backward[2:].any(), backward
        assert chip.mvm_counters()["mvm_samples"] == 2         # one sample per phase, two phases
        assert chip.errors() == []


class FakeBoard:
    """A pyserial-like port onto the register-file model, whose replies can come late or trickle in.

    `delays` gives, per frame, the seconds before its reply starts; `gap` spaces the reply's bytes."""

    def __init__(self, delays=(), gap=0.0):
        from rram_cim.sim.regfile_model import RegisterFileModel
        self.model = RegisterFileModel()
        self.timeout = 1.0
        self.delays = list(delays)
        self.gap = gap
        self.pending: list[tuple[float, int]] = []          # (arrival time, byte)
        self.frames: list[bytes] = []

    def write(self, packet: bytes) -> None:
        import time
        frame = packet[2:]
        assert int.from_bytes(packet[:2], "big") == len(frame)
        self.frames.append(frame)
        start = time.monotonic() + (self.delays.pop(0) if self.delays else 0.0)
        self.pending += [(start + i * self.gap, b) for i, b in enumerate(self.model.exchange(frame))]

    def _arrived(self) -> int:
        import time
        now = time.monotonic()
        return sum(1 for when, _ in self.pending if when <= now)

    def read(self, n: int) -> bytes:
        """As pyserial's: up to `n` bytes, waiting at most `timeout` for all of them."""
        import time
        deadline = time.monotonic() + self.timeout
        while self._arrived() < n and time.monotonic() < deadline:
            time.sleep(0.002)
        count = min(n, self._arrived())
        taken, self.pending = self.pending[:count], self.pending[count:]
        return bytes(b for _, b in taken)

    def reset_input_buffer(self) -> None:
        self.pending = self.pending[self._arrived():]


def test_a_late_reply_is_not_taken_for_the_next_one():
    """The first reply comes after the deadline; the next request must get its own answer, not the
    stale one (the transport drops the rest of the late reply and probes CHIP.id before going on)."""
    from rram_cim.host.registers import RegisterClient
    from rram_cim.host.registers_gen import TABLE
    board = FakeBoard()
    link = SerialTransport(board, timeout=0.1)
    regs = RegisterClient(link, TABLE)
    regs.write("scratch", 0xA5)                      # a reply the stale bytes could be mistaken for
    board.delays = [0.25]
    with pytest.raises(LinkError, match=r"answered 0 of 6 bytes"):
        regs.read("scratch")
    assert regs.read("geometry_rows") == 64          # not the late 0xA5 of the scratch read
    assert regs.read("scratch") == 0xA5
    assert b"\x03\x00\x00\x00\x00\x00\x00" in board.frames       # the probe went out


def test_a_trickled_reply_meets_one_deadline_per_frame_not_one_per_byte():
    import time
    board = FakeBoard(gap=0.04)                      # 13 bytes over ~0.5 s, each within the read timeout
    link = SerialTransport(board, timeout=0.15)
    started = time.monotonic()
    with pytest.raises(LinkError, match=r"answered \d+ of 13 bytes"):
        link.exchange(bytes([0x03, 0, 0, 0x10]) + bytes(9))
    assert time.monotonic() - started < 0.15 + 0.1   # the frame's deadline, not 13 x 0.15 s


def test_a_board_that_never_comes_back_in_step_is_reported():
    board = FakeBoard(delays=[5.0] * 10)
    link = SerialTransport(board, timeout=0.02)
    with pytest.raises(LinkError, match="answered 0 of 1 bytes"):
        link.exchange(b"\x00")
    with pytest.raises(LinkError, match="does not answer in step after a lost reply"):
        link.exchange(b"\x00")
