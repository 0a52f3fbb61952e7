"""Per-neuron calibration from data (host/calibration.py) on the model transport."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.calibration import fit_lines
from rram_cim.host.chip import Chip, ChipError, ModelTransport
from rram_cim.models.device import ModelInputError

LSB = REFERENCE.threshold_volts_per_lsb


def noisy_chip(seed):
    transport = ModelTransport(REFERENCE, seed, neuron_noise=True)
    transport.set_conductances(0, np.random.default_rng(seed).uniform(2, 110, (REFERENCE.rows, REFERENCE.columns)))
    return transport, Chip(transport, REFERENCE)


@pytest.mark.parametrize("seed", [3, 11])
def test_offset_calibration_trims_each_comparator_to_within_a_few_tenths_of_a_millivolt(seed):
    transport, chip = noisy_chip(seed)
    offsets = transport.macro.banks[0].offset_v / LSB            # the model's hidden comparator offsets
    calibration = chip.calibrate(0, seed=seed)
    residual = offsets + calibration.trims
    assert np.sqrt(np.mean(offsets ** 2)) > 8                     # 2 mV sigma: ~20 LSB before
    assert np.sqrt(np.mean(residual ** 2)) < 2                    # within 0.2 mV after
    assert np.abs(calibration.bias_after).mean() < np.abs(calibration.bias_before).mean() / 2
    # The trims are written: the banks carry them, and core 1 is untouched.
    assert np.allclose(transport.macro.banks[0].trim_v / LSB, calibration.trims)
    assert not transport.macro.banks[1].trim_v.any()


def test_calibration_cuts_the_mvm_error_against_the_noise_free_model():
    from rram_cim.models.macro import AnalogMacro, NeuronCodes
    from rram_cim.models.mvm import MVMModel
    transport, chip = noisy_chip(5)
    clean = AnalogMacro(REFERENCE, 5)
    clean.cores[0].g_us[:] = transport.macro.cores[0].g_us
    rng = np.random.default_rng(5)
    xs = [rng.integers(-15, 16, REFERENCE.rows) for _ in range(4)]
    exact = [MVMModel(clean, NeuronCodes(thresh_pos=20, thresh_neg=20), 6).run(0, x, "forward", 4, 4).outputs for x in xs]
    def error():
        return np.sqrt(np.mean([(chip.mvm(0, x, in_bits=4, out_bits=4, threshold_code=20) - e) ** 2
                                for x, e in zip(xs, exact)]))
    before = error()
    chip.calibrate(0)
    assert error() < before / 2


def test_trims_outside_the_range_or_shape_are_refused_and_change_nothing():
    transport, chip = noisy_chip(1)
    with pytest.raises(ModelInputError, match=r"trim codes lie in -128\.\.127"):
        chip.set_trims(0, np.full(REFERENCE.neurons, 128))
    with pytest.raises(ModelInputError, match="32 integer codes per core"):
        chip.set_trims(0, np.zeros(31, int))
    with pytest.raises(ValueError, match="core must be 0 to 1"):
        chip.set_trims(2, np.zeros(REFERENCE.neurons, int))
    assert not transport.macro.banks[0].trim_v.any()


def test_a_frame_link_refuses_bad_mvm_requests_before_any_frame_and_a_build_without_mvm_by_name():
    class Refusing:
        def exchange(self, frame):
            raise AssertionError("no frame may be sent")
    chip = Chip(Refusing(), REFERENCE)
    for call, message in [(lambda: chip.mvm(0, np.zeros(REFERENCE.rows - 1, int)), "64 integer inputs"),
                          (lambda: chip.mvm(0, np.zeros(REFERENCE.rows, int), in_bits=9), "in_bits"),
                          (lambda: chip.set_trims(0, np.full(REFERENCE.neurons, 128)), "trim codes lie in"),
                          (lambda: chip.calibrate(0, trials=0), "trials")]:
        with pytest.raises(ValueError, match=message):
            call()
    from rram_cim.config import REFERENCE_LITE
    from rram_cim.sim.regfile_model import RegisterFileModel
    lite = Chip(RegisterFileModel(REFERENCE_LITE), REFERENCE_LITE)
    with pytest.raises(ChipError, match="reference-lite build has no MVM sequencer"):
        lite.mvm(0, np.zeros(REFERENCE.rows, int))
    with pytest.raises(ChipError, match="no MVM sequencer or trims"):
        lite.set_trims(0, np.zeros(REFERENCE.neurons, int))


def test_line_fits_recover_each_outputs_gain_and_offset():
    rng = np.random.default_rng(2)
    expected = rng.normal(0, 5, (50, 3))
    measured = expected * np.array([0.8, 1.0, 1.3]) + np.array([1.5, 0.0, -2.0]) + rng.normal(0, 0.01, (50, 3))
    fit = fit_lines(measured, expected)
    assert np.allclose(fit.slope, [0.8, 1.0, 1.3], atol=0.01) and np.allclose(fit.intercept, [1.5, 0, -2], atol=0.01)
    assert np.allclose(fit.correct(measured), expected, atol=0.05)
    flat = fit_lines(np.zeros((5, 1)), np.zeros((5, 1)))
    assert (flat.slope[0], flat.intercept[0]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="same \\(samples x outputs\\) shape"):
        fit_lines(np.zeros((5, 2)), np.zeros((5, 3)))
