"""The measured data the device model is compared with, the comparison's figures of merit, and the RADAR
preset: the data carry their citation, the figures compute what they claim, the default stays as it was."""

import dataclasses
import pathlib
import runpy

import numpy as np
import pytest

from rram_cim.models import HFO2_1T1R, DeviceParams, ReRAMArray
from rram_cim.models.measured import RADAR_1T1R, fit_gate_law, fit_spreads, load_radar, load_relaxation

BENCH = runpy.run_path(str(pathlib.Path(__file__).resolve().parent.parent / "bench" / "device.py"),
                       run_name="bench_device")


def test_radar_summary_loads_and_cites_paper_repository_commit_and_files():
    radar = load_radar()
    source = radar["source"]
    assert source["doi"] == "10.1109/TED.2021.3097975"
    assert "akashlevy/RRAM-RADAR-Tuning" in source["repository"]
    assert len(source["commit"]) == 40 and "no file or code" in source["licence"]
    sweep = radar["ispp_wl_step_sweep"]
    assert [entry["wl_step_mv"] for entry in sweep] == list(range(10, 151, 10))
    for entry in sweep:
        assert entry["file"].startswith("exptdata/ispp/data/2bpc/ispp-wl")
        for level in entry["levels"]:
            assert sum(level["pulse_counts"]["cells"]) == level["cells"] == 512
    assert all(run["file"] for runs in radar["algorithm_evaluation_2bpc"].values() for run in runs)
    assert radar["gate_sweep"]["file"].endswith(".csv")


def test_radar_summary_holds_the_issues_recomputed_numbers():
    radar = load_radar()
    means = {entry["wl_step_mv"]: entry["mean_pulses"] for entry in radar["ispp_wl_step_sweep"]}
    assert means[10] == pytest.approx(54.6, abs=0.1) and means[20] == pytest.approx(33.8, abs=0.1)
    assert means[100] == pytest.approx(20.5, abs=0.1)
    first = {name: runs[0]["mean_pulses"] for name, runs in radar["algorithm_evaluation_2bpc"].items()}
    assert first["RADAR"] < first["FPPV"] < first["ISPP"]


def test_relaxation_summary_is_mit_cited_and_variance_grows_with_log_time_in_mid_range():
    relax = load_relaxation()
    assert "MIT" in relax["source"]["licence"]
    assert "RRAM-Relaxation-Master-Model" in relax["source"]["repository"]
    tech_b = relax["technologies"]["B"]["ranges"]
    mid = [r["var_slope_us2_per_decade"] for r in tech_b if 34 <= r["g_initial_us"] <= 51]
    high = [r["var_slope_us2_per_decade"] for r in tech_b if r["g_initial_us"] > 98]
    assert min(mid) > 10 and max(high) < 0.5


def test_ks_distance_is_zero_for_identical_samples_and_one_for_disjoint():
    ks = BENCH["ks_distance"]
    sample = np.array([3, 5, 5, 8, 13])
    assert ks(sample, sample) == 0.0
    assert ks([1, 2, 3], [10, 11]) == 1.0
    # A histogram (values, counts) is the sample it stands for.
    values, counts = np.unique(sample, return_counts=True)
    assert ks(values, sample, counts) == 0.0


def test_ks_distance_agrees_with_scipy():
    from scipy.stats import ks_2samp
    rng = np.random.default_rng(3)
    a, b = rng.poisson(10, 300), rng.poisson(12, 200)
    assert BENCH["ks_distance"](a, b) == pytest.approx(ks_2samp(a, b).statistic)


def test_wasserstein_is_the_shift_between_shifted_samples():
    sample = np.array([4.0, 6, 9, 20])
    assert BENCH["wasserstein"](sample, sample) == 0.0
    assert BENCH["wasserstein"](sample, sample + 3) == pytest.approx(3.0)


def test_weighted_quantile_of_a_histogram():
    assert BENCH["weighted_quantile"]([1, 2, 10], [5, 4, 1], 0.5) == 1
    assert BENCH["weighted_quantile"]([1, 2, 10], [5, 4, 1], 0.9) == 2


def test_variance_slope_per_decade_of_a_linear_in_log_variance():
    times = np.array([0.01, 0.1, 1, 100, 1e4])
    assert BENCH["variance_slope_per_decade"](times, 2.5 * np.log10(times) + 7) == pytest.approx(2.5)


def test_level_windows_are_the_measured_resistance_windows_in_adc_codes():
    entry = load_radar()["ispp_wl_step_sweep"][0]
    assert BENCH["level_windows"](entry) == [(200, 255), (167, 173), (108, 117)]


def test_default_device_parameters_are_untouched_by_the_preset_and_the_new_knob():
    assert HFO2_1T1R == DeviceParams()
    assert HFO2_1T1R.g_sat_us == 0.0 and HFO2_1T1R.v_t == 0.6 and HFO2_1T1R.g_max_us == 150.0
    assert HFO2_1T1R.k_ua_per_v2 == 50.0 and HFO2_1T1R.v_set == 1.2 and HFO2_1T1R.g_cc_sigma == 0.03
    changed = {f.name for f in dataclasses.fields(DeviceParams)
               if getattr(RADAR_1T1R, f.name) != getattr(HFO2_1T1R, f.name)}
    assert changed == {"v_t", "k_ua_per_v2", "g_sat_us", "g_max_us", "v_t_sigma", "g_cc_sigma", "v_set", "set_v0"}


def test_square_law_is_bit_identical_without_the_soft_ceiling():
    v_g = np.linspace(0, 2.5, 26)
    square = HFO2_1T1R.k_ua_per_v2 * np.square(np.maximum(v_g - 0.6, 0.0)) / HFO2_1T1R.v_c
    assert np.array_equal(HFO2_1T1R.compliance_us(v_g, 0.6), square)


def test_soft_ceiling_saturates_the_compliance_law_and_follows_it_when_small():
    params = dataclasses.replace(HFO2_1T1R, g_sat_us=100.0, g_max_us=200.0)
    assert params.compliance_us(5.0, 0.6) == pytest.approx(100.0, rel=1e-6)
    low = 0.61
    assert params.compliance_us(low, 0.6) == pytest.approx(HFO2_1T1R.compliance_us(low, 0.6), rel=1e-3)
    # Cells set with it land under the ceiling, and the array behaves the same otherwise.
    array = ReRAMArray(1, 8, np.random.default_rng(0), params=params, formed=True)
    array.set_pulse(np.ones((1, 8), bool), 2.0, 3.0)
    assert np.all(array.g_us < 100.0 * 1.2)


def test_preset_gate_law_and_spreads_refit_from_the_data():
    law = fit_gate_law()
    assert law["v_t"] == pytest.approx(RADAR_1T1R.v_t, abs=1e-3)
    assert law["g_sat_us"] == pytest.approx(RADAR_1T1R.g_sat_us, abs=0.5)
    assert law["k_ua_per_v2"] == pytest.approx(827.0, abs=1.0)     # refined to 1100 jointly (presets.py)
    assert law["rms_us"] < 10
    spreads = fit_spreads(law=law)
    assert spreads["v_t_sigma"] == pytest.approx(RADAR_1T1R.v_t_sigma, abs=1e-3)
    assert spreads["g_cc_sigma"] == pytest.approx(RADAR_1T1R.g_cc_sigma, abs=1e-3)


def test_ispp_rerun_with_the_preset_stays_near_the_measured_means_at_small_steps():
    entry = next(e for e in load_radar()["ispp_wl_step_sweep"] if e["wl_step_mv"] == 30)
    row = BENCH["compare_step"](entry, BENCH["run_ispp"](RADAR_1T1R, entry, 32, 1))
    assert 0.7 < row["ratio"] < 1.4
    assert row["ks"] < 0.3
