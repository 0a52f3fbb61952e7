"""Row/column drivers on Icarus and Verilator with the Python analog macro attached by the bridge."""

from rram_cim.sim.runner import run_and_check


def test_driver_pulses_and_senses_match_the_macro_model(driver_build):
    run_and_check(driver_build, "rram_cim.sim.cocotb_driver")
