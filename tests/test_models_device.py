"""The 1T1R cell array: every physical behaviour the control plane relies on."""

import dataclasses

import numpy as np
import pytest

from rram_cim.config import READ_DISTURB_LIMIT_V
from rram_cim.models import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray, Stuck

ALL = np.ones((16, 16), bool)


def formed(seed=0, params=HFO2_1T1R, shape=(16, 16)):
    return ReRAMArray(*shape, np.random.default_rng(seed), params, formed=True)


def test_set_conductance_rises_monotonically_with_compliance():
    means = []
    for v_g in (0.8, 1.0, 1.2, 1.4, 1.6):
        array = formed()
        array.set_pulse(ALL, v_bl=2.0, v_wl=v_g, dt_s=1e-6)
        means.append(array.g_us.mean())
        expected = HFO2_1T1R.k_ua_per_v2 * (v_g - HFO2_1T1R.v_t) ** 2 / HFO2_1T1R.v_c
        assert means[-1] == pytest.approx(max(expected, HFO2_1T1R.g_min_us), rel=0.1)
    assert np.all(np.diff(means) > 0)


def test_partial_set_grows_with_top_electrode_voltage_and_width():
    by_voltage = []
    for v_bl in (1.05, 1.15, 1.25, 1.35):
        array = formed()
        array.set_pulse(ALL, v_bl=v_bl, v_wl=1.6, dt_s=1e-7)
        by_voltage.append(array.g_us.mean())
    assert np.all(np.diff(by_voltage) > 0)
    short, long = formed(), formed()
    short.set_pulse(ALL, 1.15, 1.6, waveform=np.ones(2), dt_s=1e-7)
    long.set_pulse(ALL, 1.15, 1.6, waveform=np.ones(20), dt_s=1e-7)
    assert long.g_us.mean() > short.g_us.mean()


def test_triangular_pulse_sets_less_than_square_of_same_peak():
    square, triangle = formed(), formed()
    square.set_pulse(ALL, 1.25, 1.6, waveform=np.ones(8))
    triangle.set_pulse(ALL, 1.25, 1.6, waveform=np.array([.25, .5, .75, 1, 1, .75, .5, .25]))
    assert triangle.g_us.mean() < square.g_us.mean()


def test_unformed_cells_ignore_set_and_form_only_above_forming_voltage():
    array = ReRAMArray(16, 16, np.random.default_rng(1))
    array.set_pulse(ALL, 2.0, 1.6)
    assert np.all(array.g_us == HFO2_1T1R.g_pristine_us)
    assert not array.form(ALL, v_bl=2.0, v_wl=1.0).any()
    formed_cells = array.form(ALL, v_bl=3.8, v_wl=1.0)
    assert formed_cells.mean() > 0.95
    assert np.all(array.g_us[formed_cells] > HFO2_1T1R.g_pristine_us)


def test_reset_is_gradual_with_source_line_voltage_and_floored():
    means = []
    for v_sl in (1.1, 1.3, 1.5, 1.8):
        array = formed()
        array.set_pulse(ALL, 2.0, 1.6)
        array.reset_pulse(ALL, v_sl=v_sl, v_wl=1.6)
        means.append(array.g_us.mean())
        assert array.g_us.min() >= HFO2_1T1R.g_min_us
    assert np.all(np.diff(means) < 0)


def test_cycle_to_cycle_and_device_to_device_spread():
    array = formed(shape=(1, 1))
    levels = []
    for _ in range(200):
        array.reset_pulse(np.ones((1, 1), bool), 1.8, 1.6)
        array.set_pulse(np.ones((1, 1), bool), 2.0, 1.2)
        levels.append(array.g_us[0, 0])
    spread = np.std(levels) / np.mean(levels)
    assert 0.01 < spread < 0.1                       # HFO2_1T1R.g_cc_sigma = 3 %
    many = formed()
    assert many.v_set.std() == pytest.approx(HFO2_1T1R.v_set_d2d_sigma, rel=0.3)


def test_read_noise_is_unbiased_and_sized_and_low_reads_do_not_disturb():
    array = formed()
    array.set_pulse(ALL, 2.0, 1.3)
    before = array.g_us.copy()
    reads = np.stack([array.read(0.1) for _ in range(400)])
    assert np.array_equal(array.g_us, before)
    expected_sigma = np.hypot(HFO2_1T1R.read_noise_rel * before, HFO2_1T1R.read_noise_abs_us)
    assert np.allclose(reads.mean(axis=0), before, atol=4 * expected_sigma.max() / 20)
    assert reads.std(axis=0).mean() == pytest.approx(expected_sigma.mean(), rel=0.15)


def test_reads_above_the_disturb_limit_push_cells_towards_lrs():
    array = formed()
    array.set_pulse(ALL, 2.0, 1.0)
    before = array.g_us.copy()
    for _ in range(50):
        array.read(0.4)
    assert np.all(array.g_us > before)


def test_relaxation_drifts_down_mostly_within_the_first_hour_and_is_consistent():
    array = formed(shape=(64, 64))
    array.set_pulse(np.ones((64, 64), bool), 2.0, 1.3)
    programmed = array.g_us.copy()
    array.relax(1800)
    array.relax(1800)
    hour = array.g_us.copy()
    array.relax(23 * 3600)
    day = array.g_us.copy()
    first_hour = hour - programmed
    assert first_hour.mean() / programmed.mean() == pytest.approx(HFO2_1T1R.relax_mean_rel, abs=0.01)
    assert first_hour.std() > HFO2_1T1R.relax_sigma_abs_us
    assert np.abs(day - hour).mean() < 0.25 * np.abs(first_hour).mean()
    again = formed(shape=(64, 64))
    again.set_pulse(np.ones((64, 64), bool), 2.0, 1.3)
    again.relax(3600)
    assert np.allclose(again.g_us, hour)              # one step or two, same curve; same seed, same draw


def test_stuck_cells_never_move():
    params = DeviceParams(stuck_high_rate=0.05, stuck_low_rate=0.05)
    array = formed(params=params, shape=(64, 64))
    everything = np.ones((64, 64), bool)
    stuck = array.stuck != Stuck.NONE
    assert 0.05 < stuck.mean() < 0.15
    before = array.g_us[stuck].copy()
    array.set_pulse(everything, 2.0, 1.6)
    array.reset_pulse(everything, 1.8, 1.6)
    array.form(everything, 3.8, 1.6)
    array.relax(86400)
    assert np.array_equal(array.g_us[stuck], before)
    assert np.all(array.g_us[array.stuck == Stuck.HIGH] == params.g_max_us)


def test_endurance_counts_pulses_and_wears_out():
    params = DeviceParams(endurance_cycles=10)
    array = formed(params=params, shape=(2, 2))
    cell = np.zeros((2, 2), bool)
    cell[0, 0] = True
    for _ in range(5):
        array.set_pulse(cell, 2.0, 1.6)
        array.reset_pulse(cell, 1.8, 1.6)
    assert array.set_pulses[0, 0] == 5 and array.reset_pulses[0, 0] == 5
    assert array.set_pulses[1, 1] == 0
    assert array.stuck[0, 0] != Stuck.NONE and array.stuck[1, 1] == Stuck.NONE


def test_same_seed_same_result():
    runs = []
    for _ in range(2):
        array = formed(seed=42)
        array.set_pulse(ALL, 1.2, 1.3)
        runs.append(array.read())
    assert np.array_equal(*runs)


@pytest.mark.parametrize("call, message", [
    (lambda a: a.set_pulse(np.ones((3, 3), bool), 1.0, 1.0), "select mask has shape"),
    (lambda a: a.set_pulse(ALL, -1.0, 1.0), "v_bl must be within"),
    (lambda a: a.reset_pulse(ALL, 9.0, 1.0), "v_sl must be within"),
    (lambda a: a.set_pulse(ALL, np.ones((2, 2)), 1.0), "give a scalar"),
    (lambda a: a.set_pulse(ALL, 1.0, 1.0, waveform=[2.0]), "waveform"),
    (lambda a: a.relax(-1), "negative"),
    (lambda a: a.read(7.0), "v_read"),
    (lambda a: a.relax(float("nan")), "elapsed time = nan s must be a finite"),
    (lambda a: a.relax(float("inf")), "elapsed time = inf s must be a finite"),
    (lambda a: a.relax("1 h"), "must be a number of seconds"),
    (lambda a: a.set_pulse(ALL, 1.5, 1.5, dt_s=-1e-7), "dt_s = -1e-07 s must be a finite positive"),
    (lambda a: a.set_pulse(ALL, 1.5, 1.5, dt_s=float("nan")), "dt_s = nan s"),
    (lambda a: a.reset_pulse(ALL, 2.0, 1.5, dt_s=0.0), "dt_s = 0.0 s"),
    (lambda a: a.form(ALL, 3.5, 1.5, dt_s=float("inf")), "dt_s = inf s"),
    (lambda a: a.set_one(0, 0, 1.5, 1.5, dt_s=-1e-7), "dt_s = -1e-07 s"),
    (lambda a: a.set_one(0, 0, 1.5, 1.5, dt_s=float("nan")), "dt_s = nan s"),
    (lambda a: a.reset_one(0, 0, 2.0, 1.5, dt_s=-1.0), "dt_s = -1.0 s"),
    (lambda a: a.form_one(0, 0, 3.5, 1.5, dt_s=float("nan")), "dt_s = nan s"),
    (lambda a: a.read_one(float("nan"), 0, 0), "v_read"),
])
def test_bad_input_raises_and_changes_nothing(call, message):
    array = formed()
    before = array.g_us.copy()
    with pytest.raises(ModelInputError, match=message):
        call(array)
    assert np.array_equal(array.g_us, before)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(DeviceParams)])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_device_parameter_must_be_finite(name, value):
    with pytest.raises(ModelInputError, match=f"DeviceParams.{name} = "):
        DeviceParams(**{name: value})


@pytest.mark.parametrize("changes, message", [
    (dict(v_c=0.0), "v_c = 0 must be positive"),
    (dict(set_v0=0.0), "set_v0 = 0 must be positive"),
    (dict(relax_t0_s=0.0), "relax_t0_s = 0 must be positive"),
    (dict(endurance_cycles=0), "endurance_cycles = 0 must be a positive integer"),
    (dict(endurance_cycles=2.5), "endurance_cycles = 2.5 must be a positive integer"),
    (dict(stuck_high_rate=1.5), "stuck_high_rate = 1.5 is a rate: 0..1"),
    (dict(relax_mean_rel=-1.0), "relax_mean_rel = -1.0 must lie in"),
    (dict(read_noise_rel="2 %"), "read_noise_rel = '2 %' must be a real number"),
    (dict(v_t=True), "v_t = True must be a real number"),
])
def test_device_parameters_out_of_range_are_refused(changes, message):
    with pytest.raises(ModelInputError, match=message):
        DeviceParams(**changes)


def test_the_device_disturbs_above_the_projects_one_read_limit():
    assert HFO2_1T1R.v_read_disturb == READ_DISTURB_LIMIT_V
    array = formed()
    before = array.g_us.copy()
    array.read(READ_DISTURB_LIMIT_V)
    assert np.array_equal(array.g_us, before)
    array.read(READ_DISTURB_LIMIT_V + 0.05)
    assert np.all(array.g_us > before)


def test_bad_parameters_and_rng_are_refused():
    with pytest.raises(ModelInputError, match="must not be negative"):
        DeviceParams(v_set=-1)
    with pytest.raises(ModelInputError, match="g_pristine_us < g_min_us"):
        DeviceParams(g_min_us=500)
    with pytest.raises(ModelInputError, match="Generator"):
        ReRAMArray(2, 2, rng=42)


def test_triangular_programming_relaxes_less():
    spreads = {}
    for name, waveform in (("square", np.ones(8)), ("triangle", np.array([.25, .5, .75, 1, 1, .75, .5, .25]))):
        array = formed(shape=(64, 64))
        array.set_pulse(np.ones((64, 64), bool), 2.5, 1.3, waveform=waveform)
        programmed = array.g_us.copy()
        array.relax(3600)
        spreads[name] = np.std((array.g_us - programmed) / programmed)
    assert spreads["triangle"] < 0.85 * spreads["square"]


def test_cell_noise_is_standard_normal_and_independent_of_visit_order():
    from rram_cim.models.cell_noise import CellNoise, Stream
    together = CellNoise((64, 64), np.random.default_rng(5))
    draws = np.stack([together.normal(Stream.READ, np.ones((64, 64), bool)) for _ in range(8)])
    assert abs(draws.mean()) < 0.02 and abs(draws.std() - 1) < 0.02
    one_by_one = CellNoise((64, 64), np.random.default_rng(5))
    mask = np.zeros((64, 64), bool)
    mask[3, 7] = True
    sequence = [one_by_one.normal(Stream.READ, mask)[3, 7] for _ in range(8)]
    assert np.allclose(sequence, draws[:, 3, 7])
    other_stream = CellNoise((64, 64), np.random.default_rng(5)).normal(Stream.SET_THRESHOLD, mask)[3, 7]
    assert other_stream != sequence[0]


def test_one_cell_methods_equal_the_array_methods_bit_for_bit():
    # The analog macro's fast path (set_one, reset_one, form_one, read_one) and the whole-array methods
    # share their physics kernels: the same random history must leave identical arrays.
    from rram_cim.models import DeviceParams
    params = DeviceParams(stuck_high_rate=0.05, stuck_low_rate=0.05, endurance_cycles=40)
    ones = ReRAMArray(8, 8, np.random.default_rng(9), params)
    arrays = ReRAMArray(8, 8, np.random.default_rng(9), params)
    rng = np.random.default_rng(10)
    triangle = [0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25]
    reads = []
    for _ in range(3000):
        row, column = (int(x) for x in rng.integers(0, 8, 2))
        mask = np.zeros((8, 8), bool)
        mask[row, column] = True
        kind = rng.integers(0, 4)
        shape = triangle if rng.random() < 0.5 else [1.0] * 4
        if kind == 0:
            v = float(rng.uniform(2.5, 3.6))
            assert ones.form_one(row, column, v, 1.2, shape) == arrays.form(mask, v, 1.2, shape)[row, column]
        elif kind == 1:
            v_bl, v_wl = float(rng.uniform(1.0, 2.2)), float(rng.uniform(0.7, 1.8))
            ones.set_one(row, column, v_bl, v_wl, shape)
            arrays.set_pulse(mask, v_bl, v_wl, shape)
        elif kind == 2:
            v_sl = float(rng.uniform(0.8, 2.0))
            ones.reset_one(row, column, v_sl, 1.5, shape)
            arrays.reset_pulse(mask, v_sl, 1.5, shape)
        else:
            v = float(rng.choice([0.05, 0.09, 0.2]))
            reads.append((ones.read_one(v, row, column), arrays.read(v, mask)[row, column]))
    for name in ("g_us", "formed", "stuck", "set_pulses", "reset_pulses", "g_programmed_us", "relax_delta_us"):
        assert np.array_equal(getattr(ones, name), getattr(arrays, name)), name
    assert np.array_equal(ones.noise._count, arrays.noise._count)
    assert [a for a, _ in reads] == [b for _, b in reads]
    assert ones.formed.any() and (ones.stuck != 0).any() and ones.reset_pulses.sum() > 0
    with pytest.raises(ModelInputError, match="outside"):
        ones.set_one(8, 0, 1.0, 1.0)
    with pytest.raises(ModelInputError, match="waveform"):
        ones.reset_one(0, 0, 1.0, 1.0, [1.5])
    with pytest.raises(ModelInputError, match="v_bl"):
        ones.form_one(0, 0, 9.0, 1.0)
