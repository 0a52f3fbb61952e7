"""Progress of long steps: no minute passes in silence, and short steps stay quiet."""

import io
import os
import time

import pytest

from rram_cim.progress import Ticker


def test_a_long_step_shows_its_elapsed_time_and_its_end():
    log = io.StringIO()
    with Ticker("verilator: building chip", stream=log, note=lambda: "compiling", log_every_s=0.05):
        time.sleep(0.3)
    lines = log.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("verilator: building chip") for line in lines)
    assert lines[0].endswith(" s compiling") and lines[-1].endswith(" s done")


def test_a_short_step_prints_nothing():
    log = io.StringIO()
    with Ticker("icarus: building chip", stream=log, log_every_s=10):
        pass
    assert log.getvalue() == ""


def test_a_failed_step_says_so():
    log = io.StringIO()
    with pytest.raises(RuntimeError):
        with Ticker("build", stream=log, log_every_s=0.05):
            time.sleep(0.12)
            raise RuntimeError("make failed")
    assert log.getvalue().splitlines()[-1].endswith(" s failed")


def test_the_fpga_build_names_the_tool_that_is_running(tmp_path):
    from rram_cim.fpga.boards import _build_stage
    since = time.time() - 1
    (tmp_path / "rram_cim.asc").write_text("an older build's")
    os.utime(tmp_path / "rram_cim.asc", (since - 60, since - 60))
    assert _build_stage(tmp_path, since) == "synthesis (Yosys)"
    (tmp_path / "rram_cim.json").write_text("netlist")
    assert _build_stage(tmp_path, since) == "place and route (nextpnr)"
    (tmp_path / "rram_cim.asc").write_text("placed")
    assert _build_stage(tmp_path, since) == "packing the bitstream"
