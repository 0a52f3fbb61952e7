"""Spiking inference through SPI on Icarus and Verilator, the macro model's crossbar and neurons on the port."""

import pathlib

import pytest

from rram_cim.sim.runner import run_and_check

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_chip_infer.py")


@pytest.mark.parametrize("testcase", [
    "two_layer_network_across_two_cores_matches_the_golden_model",
    "a_route_reaches_its_row_on_every_core_it_names",
    "bad_starts_are_refused_and_the_engines_exclude_each_other",
    "reset_mid_inference_leaves_an_idle_chip",
    "directed_runs_match_the_golden_model",
])
def test_chip_inference(chip_build, testcase):
    run_and_check(chip_build, SCENARIO, testcase)


def test_chip_inference_with_neuron_noise(chip_build):
    run_and_check(chip_build, SCENARIO, "two_layer_network_across_two_cores_matches_the_golden_model",
                  extra_env={"RRAM_CIM_NEURON_NOISE": "1"})
