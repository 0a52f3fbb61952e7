"""The MVM golden model (models/mvm.py): both directions, multi-bit inputs and outputs, both conversions."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE, ChipConfig
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.models.device import ModelInputError
from rram_cim.models.macro import AnalogMacro, NeuronCodes
from rram_cim.models.mvm import (Conversion, Direction, MVMModel, effective_weights, ideal_outputs, input_frames,
                                 phases)
from rram_cim.models.neurons import NeuronParams

V_READ = 6
GAIN = NeuronParams().gain


def programmed(config=REFERENCE, seed=0, neuron_noise=False):
    """A macro whose cells hold random conductances across the programmed range (no P&V: exact values)."""
    macro = AnalogMacro(config, seed, neuron_noise=neuron_noise)
    rng = np.random.default_rng(seed)
    for array in macro.cores:
        array.g_us[:] = rng.uniform(2.0, 110.0, array.g_us.shape)
    return macro


def threshold_for(macro, x, direction, out_bits):
    """A threshold code that puts a quarter of the outputs of `x` at the top of the output range."""
    weights = effective_weights(macro.cores[0].g_us, Direction[direction.upper()], macro.config.neurons)
    charge = GAIN * V_READ * REFERENCE.bl_volts_per_lsb * np.abs(x @ weights)
    return max(1, int(np.percentile(charge, 75) / REFERENCE.threshold_volts_per_lsb / ((1 << out_bits) - 1)))


def inputs_for(rng, config, direction, in_bits):
    count = config.rows if direction == "forward" else config.neurons
    return rng.integers(-((1 << in_bits) - 1), 1 << in_bits, count)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("in_bits,out_bits", [(1, 1), (1, 4), (4, 4), (8, 8)])
@pytest.mark.parametrize("conversion", ["count", "sar"])
def test_noise_free_outputs_are_the_floor_of_the_charge_in_thresholds(direction, in_bits, out_bits, conversion):
    macro = programmed(seed=in_bits * 10 + out_bits)
    rng = np.random.default_rng(in_bits + out_bits)
    threshold = threshold_for(macro, inputs_for(rng, REFERENCE, direction, in_bits), direction, out_bits)
    codes = NeuronCodes(thresh_pos=threshold, thresh_neg=threshold)
    model = MVMModel(macro, codes, V_READ)
    nonzero = total = 0
    for _ in range(3):
        x = inputs_for(rng, REFERENCE, direction, in_bits)
        got = model.run(0, x, direction, in_bits, out_bits, conversion)
        ideal = ideal_outputs(macro.cores[0].g_us, x, direction, REFERENCE, codes, V_READ, out_bits, GAIN)
        assert np.array_equal(got.outputs, ideal)
        assert len(got.outputs) == (REFERENCE.neurons if direction == "forward" else REFERENCE.rows)
        nonzero, total = nonzero + np.count_nonzero(ideal), total + len(ideal)
    assert nonzero > total // 8                               # not a vacuous all-zero comparison


def test_count_and_sar_agree_and_sar_takes_one_step_per_bit():
    macro = programmed(seed=3)
    codes = NeuronCodes(thresh_pos=20, thresh_neg=20)
    x = np.random.default_rng(3).integers(-15, 16, REFERENCE.rows)
    count = MVMModel(macro, codes, V_READ).run(0, x, "forward", 4, 6, "count")
    sar = MVMModel(macro, codes, V_READ).run(0, x, "forward", 4, 6, "sar")
    assert np.array_equal(count.outputs, sar.outputs) and np.abs(count.outputs).max() > 4
    assert (count.samples, count.conversion_steps, sar.conversion_steps) == (15, 63, 6)


def test_outputs_saturate_at_the_top_code():
    macro = programmed(seed=4)
    # Half the rows at +255, half at -255 (all rows alike would settle every column at one voltage).
    x = np.where(np.arange(REFERENCE.rows) % 2, 255, -255)
    got = MVMModel(macro, NeuronCodes(thresh_pos=1, thresh_neg=1), V_READ).run(0, x, "forward", 8, 3, "sar")
    assert np.abs(got.outputs).max() == 7 and set(np.abs(got.outputs)) <= set(range(8))


def test_backward_is_the_transpose_of_forward_where_row_and_column_totals_are_uniform():
    config = ChipConfig(cores=1, rows=8, columns=8, neurons=4)
    rng = np.random.default_rng(5)
    g = rng.uniform(10, 50, (8, 8))
    # Sinkhorn balancing: every row and every column the same total, as balance rows and columns would make.
    for _ in range(2000):
        g *= 200.0 / g.sum(axis=1, keepdims=True)
        g *= 200.0 / g.sum(axis=0, keepdims=True)
    forward = effective_weights(g, Direction.FORWARD, 4)            # rows x column pairs
    backward = effective_weights(g, Direction.BACKWARD, 4)          # column pairs x rows
    assert np.allclose(backward, forward.T, atol=1e-9)
    # Unbalanced, they differ: the direction's normalisation is part of the weight.
    g[0] *= 3
    assert not np.allclose(effective_weights(g, Direction.BACKWARD, 4), effective_weights(g, Direction.FORWARD, 4).T)
    assert phases(config, Direction.BACKWARD) == 2 and phases(config, Direction.FORWARD) == 1


def test_backward_senses_every_row_in_phases_of_one_neuron_bank():
    macro = programmed(seed=6)
    codes = NeuronCodes(thresh_pos=2, thresh_neg=2)
    y = np.random.default_rng(6).integers(-3, 4, REFERENCE.neurons)
    got = MVMModel(macro, codes, V_READ).run(1, y, "backward", 2, 4)
    ideal = ideal_outputs(macro.cores[1].g_us, y, "backward", REFERENCE, codes, V_READ, 4, GAIN)
    assert np.array_equal(got.outputs, ideal) and np.count_nonzero(got.outputs[REFERENCE.neurons:])
    assert got.samples == 2 * 3                                      # 2 phases x (2 + 1) samples


def test_inputs_are_sign_magnitude_frames_most_significant_bit_first():
    frames = input_frames(np.array([5, -6, 0, 1]), 3)
    assert [repeats for repeats, _ in frames] == [4, 2, 1]
    assert [signs.tolist() for _, signs in frames] == [[1, -1, 0, 0], [0, -1, 0, 0], [1, 0, 0, 1]]


def test_noise_moves_outputs_by_little():
    clean, noisy = programmed(seed=7), programmed(seed=7, neuron_noise=True)
    codes = NeuronCodes(thresh_pos=30, thresh_neg=30)
    x = np.random.default_rng(7).integers(-15, 16, REFERENCE.rows)
    a = MVMModel(clean, codes, V_READ).run(0, x, "forward", 4, 6).outputs
    b = MVMModel(noisy, codes, V_READ).run(0, x, "forward", 4, 6).outputs
    error = np.sqrt(np.mean((a - b) ** 2))
    assert 0 < error < 0.25 * np.abs(a).max()


@pytest.mark.parametrize("request_, message", [
    (dict(x=np.ones(63, int)), "takes 64 integer inputs"),
    (dict(x=np.ones(64)), "integer inputs"),
    (dict(x=np.full(64, 2)), "1-bit inputs lie within"),
    (dict(in_bits=9), "in_bits must be an integer from 1 to 8"),
    (dict(out_bits=0), "out_bits must be"),
    (dict(direction="sideways"), "direction must be 'forward' or 'backward'"),
    (dict(conversion="flash"), "conversion 'count' or 'sar'"),
    (dict(core=2), "core must be 0 to 1"),
])
def test_bad_requests_are_refused_before_any_sample(request_, message):
    macro = programmed()
    before = [bank.v_mem.copy() for bank in macro.banks]
    args = dict(core=0, x=np.ones(64, int), direction="forward", in_bits=1, out_bits=1, conversion="count") | request_
    with pytest.raises(ModelInputError, match=message):
        MVMModel(macro, NeuronCodes(thresh_pos=5, thresh_neg=5), V_READ).run(**args)
    assert all(np.array_equal(bank.v_mem, b) for bank, b in zip(macro.banks, before))


def test_a_read_voltage_above_the_disturb_limit_is_refused():
    with pytest.raises(ModelInputError, match="read-disturb limit 6"):
        MVMModel(programmed(), NeuronCodes(thresh_pos=5, thresh_neg=5), 7)


def test_chip_mvm_on_the_model_and_its_refusals():
    transport = ModelTransport(REFERENCE, seed=8)
    transport.set_conductances(0, np.random.default_rng(8).uniform(2, 110, (REFERENCE.rows, REFERENCE.columns)))
    chip = Chip(transport, REFERENCE)
    x = np.random.default_rng(9).integers(-7, 8, REFERENCE.rows)
    got = chip.mvm(0, x, in_bits=3, out_bits=5, threshold_code=10)
    ideal = ideal_outputs(transport.macro.cores[0].g_us, x, "forward", REFERENCE,
                          NeuronCodes(thresh_pos=10, thresh_neg=10), V_READ, 5, GAIN)
    assert np.array_equal(got, ideal) and np.count_nonzero(got)
    with pytest.raises(ValueError, match="threshold_code must be an integer from 1 to 65535"):
        chip.mvm(0, x, in_bits=3, threshold_code=0)
    with pytest.raises(ValueError, match="v_read_code must be an integer from 1 to 6"):
        chip.mvm(0, x, in_bits=3, v_read_code=7)


def test_the_direction_and_conversion_codes_are_the_registers():
    from rram_cim.host.registers_gen import TABLE
    mode = TABLE.register("mvm_mode")
    assert mode.pack(direction=Direction.BACKWARD, conversion=Conversion.SAR) == 0b11
    assert Conversion.SAR == 1 and Direction.BACKWARD == 1
