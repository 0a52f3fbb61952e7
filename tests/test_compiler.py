"""The layer compiler: balanced differential columns make a voltage-mode neuron's input proportional to
its weights, with one gain for the whole layer; what does not fit is refused with the limit."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.compiler import CompileError, compile_layer
from rram_cim.models.neurons import column_voltages, differential_inputs
from rram_cim.sim.pv_reference import LEVELS as PV_LEVELS

LEVELS = np.array(PV_LEVELS)                      # 8 evenly spaced levels, 10 to 115 uS


@pytest.mark.parametrize("seed", range(3))
def test_neuron_inputs_are_proportional_to_the_weights_with_one_gain(seed):
    rng = np.random.default_rng(seed)
    weights = rng.integers(-7, 8, size=(40, 32))     # 24 rows left to balance with
    mapping = compile_layer(weights, LEVELS, REFERENCE)
    g_us = mapping.targets * REFERENCE.us_per_adc_lsb
    columns = g_us[:, :64].sum(axis=0)
    assert np.allclose(columns, columns[0])                  # every column the same total
    for _ in range(5):
        driven = rng.random(40) < 0.3
        v_rows = np.zeros(REFERENCE.rows)
        v_rows[list(mapping.input_rows)] = np.where(driven, 0.09, 0.0)
        v_in = differential_inputs(column_voltages(g_us, v_rows))[:32]
        expected = driven @ weights
        gain = 0.09 * (LEVELS[1] - LEVELS[0]) * REFERENCE.us_per_adc_lsb / columns[0]
        assert np.allclose(v_in, gain * expected, atol=1e-12)
    assert set(mapping.balance_rows) == set(range(40, 64))
    assert mapping.levels.min() >= 0 and mapping.levels.max() <= 7


@pytest.mark.parametrize("weights,levels,message", [
    (np.zeros((64, 4), int), LEVELS, "no balance row"),
    (np.zeros((10, 33), int), LEVELS, "a core has 32"),
    (np.full((10, 2), 8), LEVELS, "allow ±7"),
    (np.full((60, 2), 7), LEVELS, "weights sum to 420 levels"),
    (np.zeros((10, 2)), LEVELS, "integer array"),
    (np.zeros((10, 2), int), np.array([20, 50, 90]), "evenly spaced"),
])
def test_what_does_not_fit_is_refused_naming_the_limit(weights, levels, message):
    with pytest.raises(CompileError, match=message):
        compile_layer(weights, levels, REFERENCE)


def test_a_core_that_does_not_exist_is_refused():
    with pytest.raises(CompileError, match="core 2 does not exist"):
        compile_layer(np.zeros((4, 2), int), LEVELS, REFERENCE, core=2)
