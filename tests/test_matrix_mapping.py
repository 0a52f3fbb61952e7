"""Mapping one signed matrix onto a core for MVM (host/matrix_mapping.py), run through `Chip.mvm` on the
model transport with the neuron noise off."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.matrix_mapping import map_matrix
from rram_cim.models.mvm import Direction, effective_weights
from rram_cim.models.recipes import LEVELS

TOP = len(LEVELS) - 1


def truncated(product, lsb_per_unit, out_bits):
    """The ideal output of W x: the product in output LSBs, truncated towards zero and saturated."""
    scaled = np.asarray(product) * lsb_per_unit
    return np.sign(scaled) * np.minimum(np.floor(np.abs(scaled) + 1e-9), (1 << out_bits) - 1)


def run_both_ways(mapping, chip, rng, out_bits, trials=16):
    """(outputs, ideal outputs) of `trials` random 4-bit MVMs per direction, the threshold set so the largest
    |W x| drawn lands on the top code."""
    results = {}
    for direction in ("forward", "backward"):
        matrix = mapping.matrix(direction)
        xs = [rng.integers(-15, 16, matrix.shape[1]) for _ in range(trials)]
        products = np.array([matrix @ x for x in xs])
        threshold = mapping.threshold_code_for(direction, np.abs(products).max() / ((1 << out_bits) - 1))
        got = np.array([mapping.run(chip, x, direction, 4, out_bits, "sar", threshold) for x in xs])
        results[direction] = got, truncated(products, mapping.lsb_per_unit(direction, threshold), out_bits)
    return results


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("out_bits,max_lsb,rms_lsb", [(4, 1, 0.5), (6, 2, 1.0)])
def test_one_mapping_gives_w_x_forward_and_w_t_y_backward_within_a_lsb_or_two_after_pv(seed, out_bits, max_lsb,
                                                                                        rms_lsb):
    rng = np.random.default_rng(seed)
    weights = rng.integers(-TOP, TOP + 1, (24, 48))                  # 24 outputs x 48 inputs forward
    mapping = map_matrix(weights, LEVELS, REFERENCE, "both")
    chip = Chip(ModelTransport(REFERENCE, seed=seed), REFERENCE)
    chip.program(0, mapping.targets)                                  # P&V on the device model
    assert np.array_equal(mapping.matrix("forward"), weights) and np.array_equal(mapping.matrix("backward"), weights.T)
    for direction, (got, ideal) in run_both_ways(mapping, chip, rng, out_bits).items():
        assert got.shape == (16, 24 if direction == "forward" else 48)
        error = got - ideal
        assert np.abs(error).max() <= max_lsb, direction
        assert np.sqrt(np.mean(error ** 2)) < rms_lsb, direction
        assert np.abs(got).max() >= 1 << (out_bits - 1)                  # the range is used, not all zeros


def test_ideal_cells_give_exactly_the_truncated_product_and_the_expected_outputs():
    rng = np.random.default_rng(3)
    weights = rng.integers(-TOP, TOP + 1, (20, 40))
    mapping = map_matrix(weights, LEVELS, REFERENCE, "both", core=1)
    chip = Chip(ModelTransport(REFERENCE, seed=3, ideal=True), REFERENCE)
    chip.program(1, mapping.targets)
    for direction, (got, ideal) in run_both_ways(mapping, chip, rng, 5).items():
        assert np.array_equal(got, ideal), direction
    x = rng.integers(-15, 16, 40)
    threshold = mapping.threshold_code_for("forward", 10.0)
    assert np.array_equal(mapping.expected(x, "forward", 5, threshold),
                          mapping.run(chip, x, "forward", 4, 5, "count", threshold))


@pytest.mark.parametrize("direction,shape", [("forward", (32, 40)), ("backward", (64, 20))])
def test_one_direction_alone_may_use_every_neuron_or_every_row(direction, shape):
    rng = np.random.default_rng(4)
    weights = rng.integers(-TOP, TOP + 1, shape)                     # outputs x inputs of that direction
    mapping = map_matrix(weights, LEVELS, REFERENCE, direction)
    assert mapping.sizes(direction) == shape and np.array_equal(mapping.matrix(direction), weights)
    chip = Chip(ModelTransport(REFERENCE, seed=4, ideal=True), REFERENCE)
    chip.program(0, mapping.targets)
    x = rng.integers(-7, 8, shape[1])
    threshold = mapping.threshold_code_for(direction, np.abs(weights @ x).max() / 15)
    got = mapping.run(chip, x, direction, 3, 4, "sar", threshold)
    assert np.array_equal(got, truncated(weights @ x, mapping.lsb_per_unit(direction, threshold), 4))
    other = "backward" if direction == "forward" else "forward"
    with pytest.raises(CompileError, match=f"mapped for {direction} MVMs only.*direction='both'"):
        mapping.run(chip, np.zeros(shape[0], int), other)


def test_balance_lines_make_every_sensed_line_total_equal_so_each_direction_holds_the_matrix_exactly():
    rng = np.random.default_rng(5)
    weights = rng.integers(-TOP, TOP + 1, (12, 30))
    mapping = map_matrix(weights, LEVELS, REFERENCE, "both")
    levels = mapping.levels
    assert mapping.balance_rows == tuple(range(30, 64)) and mapping.balance_columns == tuple(range(24, 64))
    assert set(levels[:, :24].sum(axis=0)) == {mapping.column_total}          # used columns, every row
    assert set(levels[:30].sum(axis=1)) == {mapping.row_total}                # used rows, every column
    assert not levels[30:, 24:].any()                                         # the corner stays at level 0
    assert np.all(np.abs(np.diff(levels[30:, :24], axis=0)) <= 1)             # deficits spread evenly
    g = mapping.conductances_us()
    step = (LEVELS[1] - LEVELS[0]) * REFERENCE.us_per_adc_lsb
    forward = effective_weights(g, Direction.FORWARD, REFERENCE.neurons)[:30, :12]
    backward = effective_weights(g, Direction.BACKWARD, REFERENCE.neurons)[:12, :30]
    assert np.allclose(forward * mapping.sensed_total_us("forward") / step, weights.T)
    assert np.allclose(backward * mapping.sensed_total_us("backward") / step, weights)
    # Without the balance lines each column and row has a gain of its own.
    bare = levels.copy()
    bare[30:], bare[:, 24:] = 0, 0
    g_bare = np.asarray(LEVELS)[bare] * REFERENCE.us_per_adc_lsb
    bare_forward = effective_weights(g_bare, Direction.FORWARD, REFERENCE.neurons)[:30, :12]
    gains = bare_forward / np.where(weights.T, weights.T, np.nan)
    assert np.nanstd(gains) / np.nanmean(np.abs(gains)) > 0.01


def test_float_matrices_are_quantized_onto_the_level_range():
    weights = np.array([[0.5, -1.0, 0.26], [0.0, 0.75, -0.1]])
    mapping = map_matrix(weights, LEVELS, REFERENCE, "forward")
    assert mapping.levels_per_unit == TOP and np.array_equal(mapping.weights, [[4, -7, 2], [0, 5, -1]])
    coarse = map_matrix(weights, LEVELS, REFERENCE, "forward", levels_per_unit=4)
    assert np.array_equal(coarse.weights, [[2, -4, 1], [0, 3, 0]])
    # The scale counts W's own units: one unit is levels_per_unit levels.
    assert np.isclose(mapping.lsb_per_unit("forward", 10) / coarse.lsb_per_unit("forward", 10), TOP / 4
                      * coarse.sensed_total_us("forward") / mapping.sensed_total_us("forward"))


def test_threshold_code_for_inverts_the_scale_and_refuses_what_the_register_cannot_hold():
    mapping = map_matrix(np.random.default_rng(6).integers(-TOP, TOP + 1, (8, 16)), LEVELS, REFERENCE, "both")
    for direction in ("forward", "backward"):
        code = mapping.threshold_code_for(direction, 2.0)
        assert abs(1 / mapping.lsb_per_unit(direction, code) - 2.0) < 2.0 / code      # within one code's step
    with pytest.raises(CompileError, match="needs threshold code 0; the register holds 1..65535"):
        mapping.threshold_code_for("forward", 1e-6)
    with pytest.raises(CompileError, match=r"read code 7 is outside 1..6"):
        mapping.lsb_per_unit("forward", 10, v_read_code=7)


@pytest.mark.parametrize("weights,kwargs,message", [
    (np.ones((33, 10), int), {}, r"a 33x10 matrix \(outputs x inputs\) needs 10 rows and 33 neurons \(column pairs\): "
                                 "core 0 has 64 rows and 32 neurons"),
    (np.ones((10, 65), int), {"direction": "forward"}, "needs 65 rows and 10 neurons"),
    (np.ones((65, 10), int), {"direction": "backward"}, r"a 65x10 matrix \(rows x neurons\) needs 65 rows"),
    (np.full((4, 4), 8), {}, r"the matrix reaches 8 levels; 8 levels allow \+-7"),
    (np.array([[1.0, -2.0]]), {"levels_per_unit": 4.0},
     r"reaches 8 levels; 8 levels allow \+-7 \(at 4 levels per unit\)"),
    (np.array([[1.0, np.inf]]), {}, "not finite"),
    (np.ones((2, 2), int), {"levels_per_unit": 2.0}, "levels_per_unit is for float matrices"),
    (np.ones((2, 2), bool), {}, "integers or floats, not \\(2, 2\\) bool"),
    (np.ones((2, 2), int), {"direction": "sideways"}, "direction = 'sideways': a matrix is mapped for 'forward', "
                                                      "'backward' or 'both'"),
    (np.ones((2, 2), int), {"core": 2}, "core 2 does not exist: the chip has 2 cores"),
    (np.ones((2, 2), int), {"level_codes": (20, 50, 90)}, "evenly spaced"),
    (np.ones((2, 2), int), {"level_codes": tuple(range(10, 180, 10))}, "17 levels: the P&V level table holds 16"),
    (np.ones((2, 2), int), {"level_codes": (0, 30)}, "ADC codes 1..255"),
    # Every row used: no balance row for columns that differ.
    (np.eye(4, 64, dtype=int), {"direction": "forward"},
     "no room to balance the forward direction: the used columns sum to 0..1 levels, and 64 used rows of 64 "
     r"leave 0 balance rows, which add at most 0 levels \(column 1 is 1 short\)"),
    # Every neuron used: no balance column for rows that differ.
    (np.eye(32, 8, dtype=int)[:, ::-1] * (np.arange(32) < 4)[:, None], {},
     r"no room to balance the backward direction: the used rows sum to 0..1 levels, and 32 used neurons \(64 "
     r"columns of 64\) leave 0 balance columns, which add at most 0 levels \(row 0 is 1 short\)"),
    # One spare row cannot make up a column sum of 7 x 60 levels.
    (np.full((4, 63), 7), {"direction": "forward"},
     r"no room to balance the forward direction: the used columns sum to 0..441 levels, and 63 used rows of 64 "
     r"leave 1 balance rows, which add at most 7 levels \(column 1 is 441 short\)"),
])
def test_what_does_not_fit_is_refused_with_the_sizes(weights, kwargs, message):
    kwargs = {"level_codes": LEVELS} | kwargs
    with pytest.raises(CompileError, match=message):
        map_matrix(weights, kwargs.pop("level_codes"), REFERENCE, **kwargs)


def test_inputs_of_the_wrong_length_or_type_are_refused_before_any_mvm():
    mapping = map_matrix(np.ones((3, 5), int), LEVELS, REFERENCE, "both")
    with pytest.raises(CompileError, match=r"the forward MVM of this 3x5 matrix takes 5 integer inputs"):
        mapping.line_inputs(np.ones(4, int), "forward")
    with pytest.raises(CompileError, match=r"the backward MVM of this 5x3 matrix takes 3 integer inputs"):
        mapping.line_inputs(np.ones(3), "backward")
    with pytest.raises(CompileError, match="an MVM runs 'forward' or 'backward', not 'both'"):
        mapping.expected(np.ones(5, int), "both", 4, 10)
    assert mapping.line_inputs(np.arange(5), "forward").tolist() == list(range(5)) + [0] * 59
    assert mapping.line_inputs(np.arange(3), "backward").shape == (REFERENCE.neurons,)
