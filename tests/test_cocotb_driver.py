"""Row/column drivers on Icarus and Verilator with the Python analog macro attached by the bridge."""

from rram_cim.sim.runner import run


def test_driver_pulses_and_senses_match_the_macro_model(driver_build):
    tests, failures = run(driver_build, "rram_cim.sim.cocotb_driver")
    assert tests == 1, f"the driver bench did not run on {driver_build.simulator}"
    assert failures == 0, f"the driver bench failed on {driver_build.simulator}; the log has the seed"
