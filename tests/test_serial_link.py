"""The board path in co-simulation: the FPGA build's UART pins driven by the host's serial transport."""

import pytest

from rram_cim.host.frames import LinkError
from rram_cim.host.serial_link import SerialTransport, frame_bytes
from rram_cim.sim.runner import run_and_check


def test_serial_path_end_to_end(fpga_build):
    run_and_check(fpga_build, "rram_cim.sim.cocotb_serial")


def test_frames_carry_their_length():
    assert frame_bytes(b"\x03\x00\x00\x00") == b"\x00\x04\x03\x00\x00\x00"
    with pytest.raises(ValueError, match="1..65535"):
        frame_bytes(b"")


def test_no_board_is_a_clear_error_not_a_hang():
    with pytest.raises(LinkError, match="cannot open the board's serial port /dev/does-not-exist"):
        SerialTransport("/dev/does-not-exist")
