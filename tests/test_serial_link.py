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


def test_the_fpga_build_serves_the_host_process_as_a_board_would(fpga_build):
    """`CosimTransport(block="fpga_uart")` (the demo's --transport fpga-sim): frames from this process
    go through the FPGA build's UART bridge in the simulator."""
    import numpy as np

    from rram_cim.config import REFERENCE
    from rram_cim.host.chip import Chip
    from rram_cim.sim.cosim_link import CosimError, CosimTransport
    from rram_cim.sim.pv_reference import LEVELS

    with CosimTransport(config=REFERENCE, built=fpga_build, block="fpga_uart", log=lambda *_: None) as link:
        chip = Chip(link)
        result = chip.program(1, np.full((1, REFERENCE.columns), LEVELS[4]))
        assert result.cells_done >= REFERENCE.columns - 2 and result.pulses.mean() > 1.5
        assert np.median(np.abs(result.codes - LEVELS[4])) <= 4
        with pytest.raises(CosimError, match="do not relax"):
            chip.relax(10)
