"""The chip's generated Verilog on Icarus and Verilator, driven through SPI by the cocotb bench.

Each cocotb test runs in its own simulator process on the session's build, so no test sees the memory
contents another left behind.
"""

import pytest

from rram_cim.sim.runner import run_and_check


@pytest.mark.parametrize("testcase", [
    "chip_id_and_geometry_at_every_divider",
    "status_byte_reports_sticky_error_until_cleared",
    "random_frames_never_corrupt_the_register_file",
])
def test_chip_bench(chip_build, testcase):
    # Verilator runs the full 10,000-frame random campaign; Icarus, about 7x slower, the first 4,000 of
    # the same generator, which keeps the suite within CI's budget (`rram-cim sim` runs it whole).
    env = {"RRAM_CIM_CAMPAIGN_FRAMES": "4000"} if chip_build.simulator == "icarus" else {}
    run_and_check(chip_build, "rram_cim.sim.cocotb_chip", testcase, extra_env=env)
