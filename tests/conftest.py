import pathlib

import pytest

from rram_cim.sim.toolchain import SIMULATORS, missing_simulator_message


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("sim_build")


_builds = {}


@pytest.fixture(scope="session", params=SIMULATORS)
def chip_build(request, sim_root):
    """The chip top compiled once per simulator for the whole session."""
    simulator = request.param
    problem = missing_simulator_message(simulator)
    if problem:
        # Not a skip: the README's test command installs both simulators, so a missing one is a failure.
        pytest.fail(problem)
    from rram_cim.sim.runner import build
    if simulator not in _builds:
        _builds[simulator] = build(simulator, sim_root)
    return _builds[simulator]
