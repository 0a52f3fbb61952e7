"""Matrices larger than one core for MVM (host/tiling.py): tiles on several cores, one scale, partial sums
added in the host; on the model transport (neuron noise off) and in co-simulation against it."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE, ChipConfig
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.matrix_mapping import map_matrix
from rram_cim.host.tiling import map_tiled
from rram_cim.models.recipes import LEVELS

TOP = len(LEVELS) - 1
#: Four small cores keep P&V and the MVMs on the model fast; the tiling does not depend on the size.
SMALL = ChipConfig(name="small-quad", cores=4, rows=16, columns=16, neurons=8)


def errors_against_the_product(tiled, chip, rng, direction, out_bits, trials=16):
    """(outputs - exact W x in output LSBs, outputs) of `trials` random 4-bit MVMs, the threshold set so the
    largest partial drawn lands on the top code (no partial saturates)."""
    matrix = tiled.matrix(direction)
    xs = [rng.integers(-15, 16, matrix.shape[1]) for _ in range(trials)]
    largest = max(np.abs(tiled.partial_products(x, direction)).max() for x in xs)
    threshold = tiled.threshold_code_for(direction, largest / ((1 << out_bits) - 1))
    assert largest * tiled.lsb_per_unit(direction, threshold) <= (1 << out_bits) - 1      # no partial saturates
    got = np.array([tiled.run(chip, x, direction, 4, out_bits, "sar", threshold) for x in xs])
    exact = np.array([matrix @ x for x in xs]) * tiled.lsb_per_unit(direction, threshold)
    return got - exact, got


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("out_bits,max_lsb,rms_lsb", [(4, 2.5, 1.0), (6, 3.5, 1.2)])
def test_a_matrix_on_four_cores_gives_w_x_and_w_t_y_within_a_few_lsb_after_pv(seed, out_bits, max_lsb, rms_lsb):
    """Two row chunks x two neuron chunks; the error is against the exact (not truncated) product: each of
    the two partials adds its own truncation (< 1 LSB) to the cells' P&V spread."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(-TOP, TOP + 1, (12, 20))                  # 12 outputs x 20 inputs forward
    tiled = map_tiled(weights, LEVELS, SMALL, direction="both")
    assert (tiled.row_chunks, tiled.pair_chunks, tiled.cores) == (2, 2, (0, 1, 2, 3))
    chip = Chip(ModelTransport(SMALL, seed=seed), SMALL)
    results = tiled.program(chip)
    assert len(results) == 4 and all(result.cells_failed == 0 for result in results)
    assert np.array_equal(tiled.matrix("forward"), weights) and np.array_equal(tiled.matrix("backward"), weights.T)
    for direction, outputs in (("forward", 12), ("backward", 20)):
        error, got = errors_against_the_product(tiled, chip, rng, direction, out_bits)
        assert got.shape == (16, outputs)
        assert np.abs(error).max() <= max_lsb, direction
        assert np.sqrt(np.mean(error ** 2)) < rms_lsb, direction
        assert np.abs(got).max() >= 1 << out_bits                     # the sums use more than one partial's range


def test_ideal_cells_give_the_sum_of_each_tiles_truncated_partial():
    rng = np.random.default_rng(3)
    weights = rng.integers(-TOP, TOP + 1, (12, 20))
    tiled = map_tiled(weights, LEVELS, SMALL, direction="both")
    chip = Chip(ModelTransport(SMALL, seed=3, ideal=True), SMALL)
    tiled.program(chip)
    for direction in ("forward", "backward"):
        x = rng.integers(-15, 16, tiled.sizes(direction)[1])
        threshold = tiled.threshold_code_for(direction, np.abs(tiled.partial_products(x, direction)).max() / 31)
        partials = tiled.partial_products(x, direction) * tiled.lsb_per_unit(direction, threshold)
        truncated = (np.sign(partials) * np.floor(np.abs(partials) + 1e-9)).sum(axis=0)
        got = tiled.run(chip, x, direction, 4, 5, "count", threshold)
        assert np.array_equal(got, truncated), direction
        assert np.array_equal(got, tiled.expected(x, direction, 5, threshold)), direction
        conductances = {core: chip.read_conductances(core) for core in tiled.cores}
        read_back = tiled.expected(x, direction, 5, threshold, g_us=conductances)   # ADC codes: 0.5 uS apart
        assert np.abs(got - read_back).max() <= tiled.partials_per_output(direction), direction
        # Against the exact sum, each output's error is below one LSB per partial it adds.
        assert np.all(np.abs(got - partials.sum(axis=0)) < tiled.partials_per_output(direction))


def test_reading_each_partial_at_the_middle_of_its_interval_halves_the_truncation_error():
    rng = np.random.default_rng(7)
    tiled = map_tiled(rng.integers(-TOP, TOP + 1, (12, 20)), LEVELS, SMALL, direction="both")
    chip = Chip(ModelTransport(SMALL, seed=7, ideal=True), SMALL)
    tiled.program(chip)
    xs = [rng.integers(-15, 16, 20) for _ in range(32)]
    threshold = tiled.threshold_code_for("forward", max(np.abs(tiled.partial_products(x, "forward")).max()
                                                        for x in xs) / 31)
    exact = np.array([tiled.matrix("forward") @ x for x in xs]) * tiled.lsb_per_unit("forward", threshold)
    plain = np.array([tiled.run(chip, x, "forward", 4, 5, "sar", threshold) for x in xs])
    middle = np.array([tiled.run(chip, x, "forward", 4, 5, "sar", threshold, midpoint=True) for x in xs])
    assert np.array_equal(middle[0], tiled.expected(xs[0], "forward", 5, threshold, midpoint=True))
    assert np.all(np.abs(middle - exact) <= tiled.partials_per_output("forward"))
    rms = lambda error: np.sqrt(np.mean(error ** 2))                           # noqa: E731
    assert rms(middle - exact) < 0.65 * rms(plain - exact)                   # 0.58 -> 0.29 LSB per non-zero partial


def test_every_tile_has_the_same_sensed_totals_so_one_threshold_serves_all():
    rng = np.random.default_rng(4)
    tiled = map_tiled(rng.integers(-TOP, TOP + 1, (12, 20)), LEVELS, SMALL, direction="both")
    for tile in tiled.tiles:
        levels, mapping = tile.mapping.levels, tile.mapping
        used = 2 * mapping.neurons_used
        assert np.all(levels[:, :used].sum(axis=0) == tiled.column_total)
        assert np.all(levels[:mapping.rows_used].sum(axis=1) == tiled.row_total)
        for direction in ("forward", "backward"):
            assert mapping.lsb_per_unit(direction, 20) == tiled.lsb_per_unit(direction, 20)
    # Alone, each tile would balance to its own largest line, and the gains would differ.
    alone = {map_matrix(tile.mapping.weights, LEVELS, SMALL, "both").column_total for tile in tiled.tiles}
    assert len(alone) > 1 and max(alone) == tiled.column_total


def test_chunks_are_even_and_leave_a_balance_line_per_balanced_direction():
    rng = np.random.default_rng(5)
    forward = map_tiled(rng.integers(-TOP, TOP + 1, (24, 100)), LEVELS, REFERENCE, cores=(1, 0), direction="forward")
    assert [(tile.mapping.core, tile.rows, tile.pairs) for tile in forward.tiles] == [
        (1, range(0, 50), range(0, 24)), (0, range(50, 100), range(0, 24))]
    assert forward.partials_per_output("forward") == 2 and forward.tiles[0].mapping.balance_rows == tuple(range(50, 64))
    # One direction alone: forward may use every neuron, backward every row.
    wide = map_tiled(rng.integers(-2, 3, (64, 30)), LEVELS, REFERENCE, direction="forward")
    assert (wide.row_chunks, wide.pair_chunks) == (1, 2) and wide.tiles[0].pairs == range(0, 32)
    tall = map_tiled(rng.integers(-2, 3, (128, 20)), LEVELS, REFERENCE, direction="backward")
    assert (tall.row_chunks, tall.pair_chunks) == (2, 1) and tall.tiles[0].mapping.rows_used == 64
    assert tall.sizes("backward") == (128, 20) and tall.partials_per_output("backward") == 1


def test_a_float_matrix_is_quantized_at_one_scale_for_every_tile():
    rng = np.random.default_rng(6)
    weights = rng.normal(0, 1, (12, 20))
    weights[0, 0] = 4.0                                                # the largest |w|, on one tile only
    tiled = map_tiled(weights, LEVELS, SMALL, direction="forward")
    assert tiled.levels_per_unit == pytest.approx(TOP / 4.0)
    assert all(tile.mapping.levels_per_unit == tiled.levels_per_unit for tile in tiled.tiles)
    assert np.array_equal(tiled.weights, np.rint(weights * TOP / 4.0))


def test_a_column_too_uneven_for_its_balance_rows_takes_another_row_chunk():
    weights = np.zeros((4, 24), dtype=np.int64)
    weights[0] = TOP                                                   # column 0 sums to 12 x 7 per chunk
    tiled = map_tiled(weights, LEVELS, SMALL, direction="forward")
    assert tiled.row_chunks == 3 and tiled.column_total == 8 * TOP
    with pytest.raises(CompileError, match=r"needs 3 row chunks of at most 8 rows x 1 neuron chunks of at most 4 "
                                           r"neurons = 3 tiles, one per core; 2 cores given \(2, 3\).*: at 2 row "
                                           r"chunks a tile's columns fall 84 levels short of the shared total "
                                           r"\(84\) and its balance rows add at most 28$"):
        map_tiled(weights, LEVELS, SMALL, cores=(2, 3), direction="forward")


@pytest.mark.parametrize("arguments,message", [
    (dict(weights=np.ones((20, 70), dtype=int), config=REFERENCE),
     r"a 20x70 matrix \(outputs x inputs\) for both MVMs needs 2 row chunks of at most 35 rows x 1 neuron chunks "
     r"of at most 20 neurons = 2 tiles, one per core; 1 cores given \(0,\) \(64 rows and 32 neurons each\)$"),
    (dict(cores=(0, 4)), r"core 4 does not exist: the chip has 4 cores"),
    (dict(cores=(1, 1)), r"cores = \(1, 1\): one or more distinct cores"),
    (dict(max_rows=16), r"max_rows = 16: 1..15 \(a core's rows, one kept for balancing\)"),
    (dict(max_neurons=0), r"max_neurons = 0: 1..7"),
    (dict(direction="sideways"), r"direction = 'sideways'"),
    (dict(weights=np.full((2, 2), TOP + 1)), r"the matrix reaches 8 levels"),
])
def test_what_cannot_be_tiled_is_refused_with_the_sizes(arguments, message):
    call = dict(weights=np.ones((12, 20), dtype=int), level_codes=LEVELS, config=SMALL, direction="both")
    if arguments.get("config") is REFERENCE:
        call["cores"] = (0,)
    call.update(arguments)
    with pytest.raises(CompileError, match=message):
        map_tiled(**call)


def test_runs_the_mapping_does_not_serve_are_refused():
    tiled = map_tiled(np.ones((12, 20), dtype=int), LEVELS, SMALL, direction="forward")
    chip = Chip(ModelTransport(SMALL, seed=1, ideal=True), SMALL)
    with pytest.raises(CompileError, match="mapped for forward MVMs only"):
        tiled.run(chip, np.ones(12, dtype=int), "backward")
    with pytest.raises(CompileError, match=r"the forward MVM of this 12x20 matrix takes 20 integer inputs"):
        tiled.run(chip, np.ones(12, dtype=int), "forward")
    with pytest.raises(CompileError, match="takes 20 integer inputs"):
        tiled.expected(np.ones(20), "forward", 4, 10)


def test_map_matrix_raises_lines_to_a_shared_total_and_refuses_one_below_the_largest():
    weights = np.array([[3, -2], [1, 0]])                              # forward: columns sum to 3, 2, 1, 0
    mapping = map_matrix(weights, LEVELS, SMALL, "both", column_total=10, row_total=12)
    assert np.all(mapping.levels[:, :4].sum(axis=0) == 10) and np.all(mapping.levels[:2].sum(axis=1) == 12)
    with pytest.raises(CompileError, match="column_total = 2: the used columns sum to up to 3 levels"):
        map_matrix(weights, LEVELS, SMALL, "forward", column_total=2)
    with pytest.raises(CompileError, match="row_total is the backward direction's balance"):
        map_matrix(weights, LEVELS, SMALL, "forward", row_total=12)
    with pytest.raises(CompileError, match=r"sum to 0..3 levels \(raised to 200\), and 2 used rows of 16 leave 14"):
        map_matrix(weights, LEVELS, SMALL, "forward", column_total=200)


def exercise_tiled(chip: Chip, tiled) -> list:
    """Program row 0 of each tile's core (P&V over co-simulation is slow; the other cells stay as the seed
    formed them, all alike), then a forward MVM driving those rows and a backward one: what the host sees."""
    seen = []
    for tile in tiled.tiles:
        result = chip.program(tile.mapping.core, tile.mapping.targets[:1])
        seen.append(result.codes)
    rng = np.random.default_rng(3)
    x = np.zeros(tiled.sizes("forward")[1], dtype=np.int64)
    for tile in tiled.tiles:
        x[tile.rows.start] = rng.integers(-15, 16)
    seen.append(tiled.run(chip, x, "forward", 4, 4, "sar", threshold_code=40))
    seen.append(tiled.run(chip, rng.integers(-3, 4, tiled.sizes("backward")[1]), "backward", 2, 3, "count",
                          threshold_code=2))
    return seen


def test_a_tiled_matrix_over_cosimulation_equals_the_model_bit_for_bit(chip_build):
    from rram_cim.sim.cosim_link import CosimTransport
    rng = np.random.default_rng(5)
    tiled = map_tiled(rng.integers(-TOP, TOP + 1, (24, 100)), LEVELS, REFERENCE, direction="both")
    assert (tiled.row_chunks, tiled.pair_chunks, tiled.cores) == (2, 1, (0, 1))     # 100 inputs: 50 + 50 rows
    model = exercise_tiled(Chip(ModelTransport(REFERENCE, seed=11)), tiled)
    with CosimTransport(config=REFERENCE, seed=11, built=chip_build, log=lambda *_: None) as transport:
        cosim = exercise_tiled(Chip(transport), tiled)
        assert Chip(transport).errors() == []
    for k, (expected, got) in enumerate(zip(model, cosim)):
        assert np.array_equal(expected, got), f"step {k} differs on {chip_build.simulator}: {expected} / {got}"
    forward, backward = model[-2], model[-1]
    assert np.abs(forward).max() > 15 and len(np.unique(forward)) > 5          # sums past one partial's range
    assert np.count_nonzero(backward) >= 2
