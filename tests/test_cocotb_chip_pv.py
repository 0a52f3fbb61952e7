"""On-chip programming through SPI on Icarus and Verilator, the analog macro model on the port."""

import pytest

from rram_cim.sim.runner import run

TEST_MODULE = "rram_cim.sim.cocotb_chip_pv"


@pytest.mark.parametrize("testcase", [
    "programming_a_row_through_spi_matches_the_reference",
    "bad_selection_is_refused_and_abort_stops_the_engine",
    "reset_mid_programming_leaves_an_idle_chip",
])
def test_chip_programming(chip_build, testcase):
    tests, failures = run(chip_build, TEST_MODULE, testcase=testcase)
    assert tests == 1, f"{testcase} did not run on {chip_build.simulator}"
    assert failures == 0, f"{testcase} failed on {chip_build.simulator}; the log has the seed"
