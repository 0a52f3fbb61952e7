"""Crossbar reads, IR drop (against badcrossbar as an independent oracle), neurons and energy."""

import logging
import warnings

import numpy as np
import pytest

from rram_cim.config import READ_DISTURB_LIMIT_V
from rram_cim.models import (Crossbar, EnergyMeter, EnergyParams, IRDropSolver, ModelInputError, NeuronBank,
                             NeuronMode, NeuronParams, column_voltages, differential_currents,
                             differential_inputs, ir_drop_currents, read_currents, slc_group_conductance)


def badcrossbar():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # its plotting half needs cairo, which we do not use
        import badcrossbar as oracle
    logging.getLogger().setLevel(logging.WARNING)
    return oracle


def test_ideal_read_is_ohm_and_kirchhoff():
    rng = np.random.default_rng(0)
    g = rng.uniform(1, 100, (64, 10))
    v = rng.uniform(0, 0.1, 64)
    assert np.allclose(read_currents(g, v), [sum(g[i, j] * v[i] for i in range(64)) for j in range(10)])
    batch = rng.uniform(0, 0.1, (5, 64))
    assert read_currents(g, batch).shape == (5, 10)


def test_differential_pairs_and_slc_groups():
    rng = np.random.default_rng(1)
    g_plus, g_minus = rng.uniform(1, 100, (2, 8, 4))
    v = rng.uniform(0, 0.1, 8)
    assert np.allclose(differential_currents(g_plus, g_minus, v), v @ g_plus - v @ g_minus)
    # SPIRIT: weight +3 of 4 cells per sign
    assert slc_group_conductance(np.array([3]), 100.0, 1.0, group=4)[0] == pytest.approx(301.0)
    with pytest.raises(ModelInputError, match="0..4"):
        slc_group_conductance(np.array([5]), 100.0, 1.0, group=4)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (3, 7), (16, 16), (40, 25), (25, 40)])
@pytest.mark.parametrize("seed", [0, 1])
def test_ir_drop_matches_badcrossbar(shape, seed):
    rng = np.random.default_rng(seed)
    g = rng.uniform(1, 150, shape)
    v = rng.uniform(-0.1, 0.1, (3, shape[0]))
    r_word, r_bit = rng.uniform(0.5, 5, 2)
    ours = ir_drop_currents(g, v, r_word, r_bit)
    theirs = badcrossbar().compute(v.T, 1e6 / g, r_i_word_line=r_word, r_i_bit_line=r_bit).currents.output * 1e6
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-12 * np.abs(theirs).max())


@pytest.mark.parametrize("r_word, r_bit", [(2.0, 2.0), (0.1, 20.0), (20.0, 0.1), (1e-6, 1e-6)])
def test_ir_drop_batch_is_the_same_as_one_vector_at_a_time(r_word, r_bit):
    rng = np.random.default_rng(5)
    g = rng.uniform(1, 150, (24, 17))
    v = rng.uniform(0, 0.1, (100, 24))
    solver = IRDropSolver(g, r_word, r_bit)
    batch = solver.currents(v)
    assert batch.shape == (100, 17)
    assert np.allclose(batch, [solver.currents(row) for row in v], rtol=1e-12, atol=0)
    theirs = badcrossbar().compute(v[:2].T, 1e6 / g, r_i_word_line=r_word, r_i_bit_line=r_bit).currents.output * 1e6
    assert np.allclose(batch[:2], theirs, rtol=1e-9, atol=0)


def test_ir_drop_solver_is_an_effective_conductance_matrix():
    rng = np.random.default_rng(6)
    g = rng.uniform(1, 150, (12, 9))
    solver = IRDropSolver(g, 2.0, 3.0)
    assert solver.g_eff_us.shape == g.shape
    # Wire resistance only takes current away, and a cell far from driver and sense amplifier loses most.
    assert np.all(solver.g_eff_us < g)
    loss = 1 - solver.g_eff_us / g
    assert loss[0, -1] > loss[-1, 0]
    v = rng.uniform(0, 0.1, 12)
    assert np.allclose(solver.currents(v), v @ solver.g_eff_us, rtol=1e-15)


def test_a_column_without_conducting_cells_carries_no_current():
    g = np.random.default_rng(7).uniform(1, 150, (10, 6))
    g[:, 2] = 0.0
    currents = IRDropSolver(g, 2.0, 2.0).currents(np.full(10, 0.1))
    assert currents[2] == 0.0 and np.all(np.delete(currents, 2) > 0)


def test_ir_drop_lowers_currents_and_vanishes_with_thin_wires():
    rng = np.random.default_rng(2)
    g = rng.uniform(50, 150, (64, 64))
    v = np.full(64, 0.1)
    ideal = read_currents(g, v)
    assert np.all(ir_drop_currents(g, v, 10.0, 10.0) < ideal)
    assert np.allclose(ir_drop_currents(g, v, 1e-6, 1e-6), ideal, rtol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda: read_currents(np.ones(3), np.ones(3)), "2-D"),
    (lambda: read_currents(np.ones((3, 2)), np.ones(4) * 0.1), "do not match 3 rows"),
    (lambda: read_currents(-np.ones((3, 2)), np.ones(3) * 0.1), "non-negative"),
    (lambda: read_currents(np.ones((3, 2)), np.ones(3)), "within"),
    (lambda: ir_drop_currents(np.ones((3, 2)), np.zeros(3), 0.0, 1.0), "positive"),
    (lambda: differential_currents(np.ones((3, 2)), np.ones((2, 3)), np.zeros(3)), "differ in shape"),
])
def test_crossbar_bad_input(call, message):
    with pytest.raises(ModelInputError, match=message):
        call()


def _crossbar_reads():
    g = np.random.default_rng(4).uniform(1, 100, (3, 2))
    return [("read_currents", lambda v: read_currents(g, v)), ("Crossbar", Crossbar(g).currents),
            ("IRDropSolver", IRDropSolver(g, 1e-6, 1e-6).currents)]     # wires thin enough to vanish


@pytest.mark.parametrize("read", [read for _, read in _crossbar_reads()], ids=[n for n, _ in _crossbar_reads()])
@pytest.mark.parametrize("v_rows, message", [
    ([0.05, np.nan, 0.05], "finite and within"),
    ([0.05, np.inf, 0.05], "finite and within"),
    (np.zeros((2, 2, 3)), r"shape \(2, 2, 3\) do not match 3 rows"),
    ([0.05, 0.05], r"shape \(2,\) do not match 3 rows"),
    (["a", "b", "c"], "must be real numbers"),
    ([0.05j, 0, 0], "must be real numbers"),
    ([0.0, READ_DISTURB_LIMIT_V * 1.01, 0.0], f"within \\+-{READ_DISTURB_LIMIT_V} V"),
    ([0.0, -READ_DISTURB_LIMIT_V * 1.01, 0.0], "read-disturb limit"),
])
def test_every_crossbar_read_refuses_what_no_read_can_be(read, v_rows, message):
    with pytest.raises(ModelInputError, match=message):
        read(v_rows)


def test_every_crossbar_read_takes_a_list_up_to_the_read_limit():
    g = np.random.default_rng(4).uniform(1, 100, (3, 2))
    v = [READ_DISTURB_LIMIT_V, -READ_DISTURB_LIMIT_V, 0.0]
    expected = np.asarray(v) @ g
    for name, read in _crossbar_reads():
        assert np.allclose(read(v), expected, rtol=1e-6), name


@pytest.mark.parametrize("r", [np.nan, np.inf, -1.0, 0.0, "1"])
def test_ir_drop_refuses_a_wire_resistance_that_is_no_resistance(r):
    with pytest.raises(ModelInputError, match="wire segment resistances must be finite positive ohms"):
        IRDropSolver(np.ones((3, 2)), r, 1.0)
    with pytest.raises(ModelInputError, match="r_bit_ohm"):
        IRDropSolver(np.ones((3, 2)), 1.0, r)


@pytest.mark.parametrize("states, group, message", [
    ([1.5], 4, "whole numbers of cells ON, 0..4"),
    ([-1], 4, "whole numbers"),
    ([np.nan], 4, "whole numbers"),
    ([1], 2.5, "positive whole number of cells"),
    ([1], 0, "positive whole number of cells"),
])
def test_slc_groups_count_whole_cells(states, group, message):
    with pytest.raises(ModelInputError, match=message):
        slc_group_conductance(states, 100.0, 1.0, group)
    assert slc_group_conductance([2.0], 100.0, 1.0, 4)[0] == pytest.approx(202.0)


def quiet(**changes):
    return NeuronParams(noise=False, **changes)


def test_column_settles_to_conductance_weighted_average():
    g = np.array([[10.0, 1.0], [30.0, 1.0]])
    v = np.array([0.2, 0.0])
    assert np.allclose(column_voltages(g, v), [0.05, 0.1])
    assert np.allclose(column_voltages(g, np.full(2, 0.3)), 0.3)
    assert np.allclose(differential_inputs(np.array([0.3, 0.1, 0.0, 0.2])), [0.2, -0.2])


def test_spike_count_follows_input_and_sign():
    params = quiet(v_threshold_pos=0.05, v_threshold_neg=0.05)
    bank = NeuronBank(3, params, np.random.default_rng(0))
    steps = 200
    inputs = np.tile([0.1, 0.2, -0.2], (steps, 1))
    raster = bank.run(inputs)
    counts = raster.sum(axis=0)
    per_spike = int(np.ceil(0.05 / (params.gain * 0.1)))          # samples to reach threshold at 0.1 V
    assert counts[0] == steps // per_spike
    assert counts[1] > counts[0] > 0 and counts[2] == -counts[1]
    assert set(np.unique(raster[:, 2])) == {-1, 0}


def test_refractory_period_caps_the_rate_but_integration_goes_on():
    fast = NeuronBank(1, quiet(v_threshold_pos=0.01), np.random.default_rng(0))
    slow = NeuronBank(1, quiet(v_threshold_pos=0.01, refractory_steps=4), np.random.default_rng(0))
    inputs = np.full((100, 1), 0.2)
    assert fast.run(inputs).sum() == 100
    assert slow.run(inputs).sum() == 20


def test_reset_by_subtraction_keeps_what_lay_beyond_the_threshold_and_keeps_the_refractory_period():
    from rram_cim.models.neurons import NeuronReset
    step = 0.15 / quiet().gain                     # each sample moves the membrane by 0.15 V
    for mode in (NeuronMode.IF, NeuronMode.LIF):
        zero = NeuronBank(1, quiet(mode=mode), np.random.default_rng(0))
        subtract = NeuronBank(1, quiet(mode=mode, reset=NeuronReset.SUBTRACT), np.random.default_rng(0))
        assert zero.step(np.array([step]))[0] == subtract.step(np.array([step]))[0] == 1
        assert zero.v_mem[0] == 0.0 and subtract.v_mem[0] == pytest.approx(0.05)
    # Ten samples of 0.07 V: 0.7 V of charge. Subtraction spends it a threshold at a time (7 spikes); a
    # reset to zero throws away what lay beyond the threshold at each spike (one spike per 2 samples).
    drive = np.full((10, 1), 0.07 / quiet().gain)
    assert NeuronBank(1, quiet(reset=NeuronReset.SUBTRACT), np.random.default_rng(0)).run(drive).sum() == 7
    assert NeuronBank(1, quiet(), np.random.default_rng(0)).run(drive).sum() == 5
    late = NeuronBank(1, quiet(reset=NeuronReset.SUBTRACT, refractory_steps=2), np.random.default_rng(0))
    assert late.run(np.full((3, 1), step))[:, 0].tolist() == [1, 0, 0]
    assert late.v_mem[0] == pytest.approx(0.05 + 0.3)


def test_leak_reduces_firing_and_adc_mode_counts_charge():
    drive = np.full((300, 1), 0.05)
    plain = NeuronBank(1, quiet(), np.random.default_rng(0)).run(drive).sum()
    leaky = NeuronBank(1, quiet(mode=NeuronMode.LIF, leak=0.1), np.random.default_rng(0)).run(drive).sum()
    assert leaky < plain
    adc = NeuronBank(1, quiet(mode=NeuronMode.ADC), np.random.default_rng(0))
    total = adc.run(drive).sum()
    assert total == int(300 * 0.05 * adc.params.gain / adc.params.v_threshold_pos + 1e-9)


def test_noise_and_offset_make_threshold_crossings_statistical():
    params = NeuronParams(v_threshold_pos=0.004, v_threshold_neg=0.004)
    counts = [np.abs(NeuronBank(500, params, np.random.default_rng(s)).run(np.zeros((200, 500)))).sum()
              for s in range(2)]
    assert counts[0] > 0 and counts[1] > 0 and counts[0] != counts[1]
    silent = NeuronBank(500, quiet(v_threshold_pos=0.004, v_threshold_neg=0.004), np.random.default_rng(0))
    assert not silent.run(np.zeros((200, 500))).any()
    assert params.noise_sigma_v == pytest.approx(1.44e-4, rel=0.01)       # sqrt(kT / 200 fF)


def test_neuron_bad_input():
    with pytest.raises(ModelInputError, match="thresholds"):
        NeuronParams(v_threshold_pos=0)
    bank = NeuronBank(2, quiet(), np.random.default_rng(0))
    with pytest.raises(ModelInputError, match="2 neurons"):
        bank.step(np.zeros(3))
    with pytest.raises(ModelInputError, match="no conductance"):
        column_voltages(np.zeros((2, 2)), np.zeros(2))


def test_energy_per_read_pulse_event_and_spi_bit():
    meter = EnergyMeter()
    g = np.full((4, 2), 50.0)
    v = np.array([0.1, 0.0, 0.1, 0.0])
    expected = 2 * (0.1 ** 2) * (2 * 50e-6) * meter.params.t_read_s * 1e12
    assert meter.read(g, v) == pytest.approx(expected)
    assert meter.pulse(2.0, 50.0, 1e-6) == pytest.approx(2.0 * 50e-6 * 1e-6 * 1e12)
    meter.events(synaptic_events=4, neuron_samples=2, c_sample_ff=20)
    meter.fired(1)
    meter.spi(8)
    assert EnergyParams().e_spi_bit_pj == pytest.approx(0.5 * 6e-12 * 1.8 ** 2 * 1e12)
    report = meter.per_event()
    assert report["total_pj"] > report["array_pj"] > 0
    assert report["spirit_total_pj"] == 180.0
    with pytest.raises(ModelInputError, match="no synaptic events"):
        EnergyMeter().per_event()
