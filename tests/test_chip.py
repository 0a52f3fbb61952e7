"""The host `Chip` over its transports: the golden model and the RTL co-simulation give the same pulses,
codes and spikes for the same seed; bad requests are refused before anything changes."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import Layer, compile_network
from rram_cim.host.programming import ProgrammingError
from rram_cim.host.registers import ChipError
from rram_cim.protocol import StatusBit
from rram_cim.sim.cosim_link import CosimError, CosimTransport
from rram_cim.models.recipes import LEVELS
from rram_cim.sim.regfile_model import RegisterFileModel

ROWS = 2                    # rows programmed per core in the co-simulated comparison


def small_network(seed: int):
    """Two layers whose driven rows are rows 0..ROWS-1 of each core, so only those need programming."""
    rng = np.random.default_rng(seed)
    layers = [Layer(rng.integers(0, 8, (ROWS, 4)), rng.integers(0, 8, (ROWS, 4)), ROWS),
              Layer(rng.integers(0, 8, (4, 3)), rng.integers(0, 8, (4, 3)), 4)]
    return compile_network(layers, LEVELS, REFERENCE, threshold_code=2, v_read_code=6)


def exercise(chip: Chip, mapping, rng) -> dict:
    """Program the first rows of both cores, read them back, run three inferences, age the cells a day
    and read again: everything a host sees."""
    seen = {}
    for core, targets in enumerate(mapping.targets):
        rows = 4 if core else ROWS
        result = chip.program(core, targets[:rows], cell_pulses=bool(core))       # per-cell pulses optional
        seen[f"program{core}"] = (result.pulses, result.codes, result.cells_done, result.cells_failed,
                                  result.pulses_total, result.failed_cells)
    chip.configure(mapping)
    for i in range(3):
        raster = rng.random((6, ROWS)) < 0.8
        scores, run = chip.classify(mapping, raster)
        seen[f"infer{i}"] = (run.events, run.steps, run.spikes, run.row_events, run.dropped, scores)
    seen["counters"] = chip.counters()
    seen["status"] = chip.status() & (StatusBit.INFER_DONE | StatusBit.BUSY | StatusBit.ERROR)
    seen["errors"] = chip.errors()
    chip.relax(86400)
    seen["relaxed"] = chip.read_codes(0, 0, ROWS)
    return seen


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else a == b


def test_model_and_cosimulation_agree_exactly(chip_build):
    mapping = small_network(5)
    model = exercise(Chip(ModelTransport(REFERENCE, seed=7)), mapping, np.random.default_rng(0))
    with CosimTransport(config=REFERENCE, seed=7, built=chip_build, log=lambda *_: None) as transport:
        cosim = exercise(Chip(transport), mapping, np.random.default_rng(0))
        assert transport.sim_seconds() > 0 and transport.frames > 100
    for key in model:
        assert same(model[key], cosim[key]), f"{key} differs on {chip_build.simulator}"
    spikes = sum(model[f"infer{i}"][2] for i in range(3))
    assert spikes > 0 and any(model[f"infer{i}"][0][:-1] != [] for i in range(3))   # not vacuous
    assert not np.array_equal(model["relaxed"], model["program0"][1])              # relaxation moved cells
    assert model["status"] == StatusBit.INFER_DONE and model["errors"] == []
    assert model["counters"]["neuron_step"] == 6 + 1 and model["counters"]["neuron_spikes"] == model["infer2"][2]


def test_bad_requests_change_nothing_on_the_model():
    transport = ModelTransport(REFERENCE, seed=1)
    chip = Chip(transport)
    before = [array.g_us.copy() for array in transport.macro.cores]
    good = np.full((2, REFERENCE.columns), LEVELS[3])
    for call, message in [
        (lambda: chip.program(2, good), "core 2 does not exist"),
        (lambda: chip.program(0, good[:, :10]), "rows x 64 columns"),
        (lambda: chip.program(0, good, first_row=63), "rows 63..64 do not fit"),
        (lambda: chip.program(0, good + 200), "ADC codes 0..255"),
        (lambda: chip.program(0, good * 1.0), "integer ADC codes"),
        (lambda: chip.program(0, np.arange(2 * 64).reshape(2, 64) % 17 * 10 + 20), "17 levels"),
    ]:
        with pytest.raises(ProgrammingError, match=message):
            call()
    assert all(np.array_equal(b, a.g_us) for b, a in zip(before, transport.macro.cores))
    with pytest.raises(ChipError, match="not configured"):
        chip.infer([[(0, 1)]])
    with pytest.raises(ValueError, match="time runs forward"):
        chip.relax(-1)


def test_transports_are_checked_and_a_board_cannot_skip_time():
    with pytest.raises(TypeError, match="exchange"):
        Chip(object())
    with pytest.raises(ValueError, match="not neurram-like"):
        from rram_cim.config import NEURRAM_LIKE
        Chip(ModelTransport(REFERENCE), NEURRAM_LIKE)
    frames = Chip(RegisterFileModel())
    with pytest.raises(ChipError, match="cannot be skipped"):
        frames.relax(10)
    with pytest.raises(ProgrammingError, match="compiled for reference"):
        from rram_cim.config import NEURRAM_LIKE
        Chip(ModelTransport(NEURRAM_LIKE), NEURRAM_LIKE).load(small_network(0))


def test_a_cosimulation_of_another_block_is_refused(tmp_path):
    class Other:
        config, toplevel, simulator = REFERENCE, "rram_cim_spi_target", "icarus"
    with pytest.raises(CosimError, match="rram_cim_spi_target"):
        CosimTransport(config=REFERENCE, built=Other())


def test_holding_recipes_program_through_the_model_transport_and_read_back_averaged():
    from rram_cim.host.recipes import HOLDING, level_recipes
    chip = Chip(ModelTransport(REFERENCE, seed=3))
    targets = np.random.default_rng(3).choice(LEVELS, size=(REFERENCE.rows, REFERENCE.columns))
    plain = chip.program(0, targets)
    held = chip.program(1, targets, level_recipes(REFERENCE, LEVELS, **HOLDING))
    assert plain.verify_reads == 1 and held.verify_reads == 4
    assert held.in_window.mean() >= 0.95 and held.in_window_true.mean() >= 0.95
    assert plain.in_window.mean() < 0.8 and held.mean_pulses < plain.mean_pulses
    with pytest.raises(ProgrammingError, match="reads = 3"):
        chip.read_codes(0, reads=3)


def test_a_build_without_averaging_refuses_averaged_recipes_before_a_frame():
    from rram_cim.config import REFERENCE_LITE
    from rram_cim.host.recipes import HOLDING, level_recipes
    chip = Chip(ModelTransport(REFERENCE_LITE, seed=3), REFERENCE_LITE)
    targets = np.full((1, REFERENCE_LITE.columns), LEVELS[0])
    with pytest.raises(ProgrammingError, match="pv_averaging off"):
        chip.program(0, targets, level_recipes(REFERENCE_LITE, LEVELS, **HOLDING))
    confirmed = chip.program(0, targets, level_recipes(REFERENCE_LITE, LEVELS, confirm=True, widen=6.0))
    assert confirmed.verify_reads == 1
    from rram_cim.models.pv import Algorithm, PVSettings
    with pytest.raises(ProgrammingError, match="has no RADAR"):
        chip.program(0, targets, PVSettings(algorithm=Algorithm.RADAR, sl_stop=140))


# MVMs in co-simulation: a sample of the bit matrix (the full one runs in Amaranth's simulator,
# tests/test_mvm_sequencer.py): (direction, in_bits, out_bits, conversion, threshold code).
MVM_SAMPLE = [("forward", 1, 1, "count", 1), ("forward", 4, 4, "sar", 24), ("backward", 4, 4, "count", 24),
              ("backward", 8, 8, "sar", 2), ("forward", 8, 4, "count", 400)]


def exercise_mvm(chip: Chip) -> dict:
    """Rows 0-3 of core 1 programmed to random levels (formed cells are all alike: every output would be
    0), MVMs of the sample on core 1 with inputs on those rows, then trims and again."""
    rng = np.random.default_rng(3)
    seen = {"program": chip.program(1, rng.choice(LEVELS, (4, REFERENCE.columns))).codes}
    for trims in (None, rng.integers(-40, 40, REFERENCE.neurons)):
        if trims is not None:
            chip.set_trims(1, trims)
        # With trims, the short ones (8-bit inputs take 255 samples: ~50,000 cycles each on Icarus).
        for direction, in_bits, out_bits, conversion, threshold in MVM_SAMPLE if trims is None else MVM_SAMPLE[:3]:
            lines = REFERENCE.rows if direction == "forward" else REFERENCE.neurons
            x = rng.integers(-(1 << in_bits) + 1, 1 << in_bits, lines)
            if direction == "forward":
                x[4:] = 0                             # the programmed rows only: the others are all alike
            y = chip.mvm(1, x, direction, in_bits, out_bits, conversion, threshold_code=threshold)
            seen[direction, in_bits, out_bits, conversion, trims is not None] = (y, chip.mvm_counters())
    seen["status"] = chip.status() & (StatusBit.MVM_DONE | StatusBit.BUSY | StatusBit.ERROR)
    return seen


def test_mvms_and_trims_over_frames_equal_the_model_bit_for_bit(chip_build):
    model = exercise_mvm(Chip(ModelTransport(REFERENCE, seed=11)))
    with CosimTransport(config=REFERENCE, seed=11, built=chip_build, log=lambda *_: None) as transport:
        cosim = exercise_mvm(Chip(transport))
        errors = Chip(transport).errors()
    assert errors == [] and cosim["status"] == model["status"] == StatusBit.MVM_DONE
    assert np.array_equal(cosim.pop("program"), model.pop("program"))
    for key in (key for key in model if key != "status"):
        (y, counters), (got, chip_counters) = model[key], cosim[key]
        assert np.array_equal(y, got), f"{key} differs on {chip_build.simulator}: {y} / {got}"
        assert {name: chip_counters[name] for name in counters} == counters and chip_counters["mvm_cycles"] > 0
    outputs = np.concatenate([model[key][0] for key in model if key != "status"])
    assert np.abs(outputs).max() > 1 and len(np.unique(outputs)) > 5          # not vacuous
    trimmed = [key for key in model if key != "status" and key[-1]]
    assert any(not np.array_equal(model[key][0], model[key[:-1] + (False,)][0]) for key in trimmed)


def test_the_chip_refuses_bad_mvm_starts_and_host_access_to_a_running_mvm(verilator_chip_build):
    """Each refusal raises ERROR.mvm_config (or engine_busy / the other engine's config error) and changes
    nothing: no MVM runs, the windows and registers keep their contents. On Verilator only: the refusals
    are the RTL's, the same on either simulator, and the long MVM they need costs a minute on Icarus."""
    from rram_cim.host.registers import RegisterClient
    from rram_cim.host.registers_gen import TABLE
    start = TABLE.register("ctrl").field("mvm_start").mask
    with CosimTransport(config=REFERENCE, seed=4, built=verilator_chip_build, log=lambda *_: None) as transport:
        regs = RegisterClient(transport, TABLE)
        good = dict(mvm_bits=TABLE.register("mvm_bits").pack(in_bits=8, out_bits=8), mvm_core=1, mvm_v_read=6,
                    mvm_threshold=2, mvm_mode=TABLE.register("mvm_mode").pack(direction=1, conversion=1))
        for name, value in good.items():
            regs.write(name, value)
        regs.write_window("mvm_x", 0, bytes(range(2 * REFERENCE.neurons)))
        for name, bad in [("mvm_bits", 0x10), ("mvm_bits", 0x91), ("mvm_core", 2), ("mvm_v_read", 7),
                          ("mvm_threshold", 0)]:
            regs.write(name, bad)
            with pytest.raises(ChipError, match="mvm_config"):
                regs.write("ctrl", start)
            assert not regs.status() & (StatusBit.BUSY | StatusBit.MVM_DONE), name
            regs.write(name, good[name])
        assert regs.read_window("mvm_x", 0, 2 * REFERENCE.neurons) == bytes(range(2 * REFERENCE.neurons))
        # A backward 8-bit MVM runs ~10^5 cycles: long enough for the host to try everything it may not.
        regs.write("ctrl", start)
        assert regs.status() & StatusBit.BUSY
        for attempt, error in [(lambda: regs.write_window("mvm_x", 0, b"\x05"), "engine_busy"),
                               (lambda: regs.read_window("mvm_y", 0, 2), "engine_busy"),
                               (lambda: regs.write("mvm_threshold", 9), "engine_busy"),
                               (lambda: regs.write_window("neuron_trim", 0, b"\x05"), "engine_busy"),
                               (lambda: regs.write("ctrl", TABLE.register("ctrl").field("pv_start").mask), "pv_config"),
                               (lambda: regs.write("ctrl", TABLE.register("ctrl").field("inf_start").mask),
                                "infer_config"),
                               (lambda: regs.write("ctrl", start), "mvm_config")]:
            with pytest.raises(ChipError, match=error):
                attempt()
        assert regs.status() & StatusBit.BUSY, "the MVM ended before the attempts: make it longer"
        regs.wait_done(StatusBit.MVM_DONE, None, 0.1, 1e-3, what="the MVM")
        assert regs.read("mvm_threshold") == 2 and regs.read_window("mvm_x", 0, 1) == b"\x00"
        assert regs.read_window("neuron_trim", 0, 1) == b"\x00" and regs.read("mvm_samples") == 2 * 255
        assert regs.errors() == []


def test_calibration_over_frames_equals_the_model_with_the_neurons_noise_on(verilator_chip_build):
    """Chip.calibrate through SPI (MVMs and trim writes) finds the trims the model finds: with the noise on,
    the macro behind the port draws the same offsets and noise in the same order as the golden model."""
    model = Chip(ModelTransport(REFERENCE, seed=21, neuron_noise=True)).calibrate(1, trials=6)
    with CosimTransport(config=REFERENCE, seed=21, neuron_noise=True, built=verilator_chip_build,
                        log=lambda *_: None) as transport:
        chip = Chip(transport)
        cosim = chip.calibrate(1, trials=6)
        assert chip.errors() == []
    assert np.array_equal(cosim.trims, model.trims) and cosim.mvms == model.mvms
    assert np.array_equal(cosim.bias_before, model.bias_before) and np.array_equal(cosim.bias_after, model.bias_after)
    assert np.abs(model.trims).max() > 4                              # the offsets were there to trim
    assert np.abs(model.bias_after).mean() < np.abs(model.bias_before).mean()


def test_the_host_packs_level_indices_as_tightly_as_the_build_takes_them():
    """8 per-level recipes: 3 bits per target on the reference chip, a byte on reference-lite (no packing);
    the same cells come out either way on the model transport."""
    from rram_cim.config import REFERENCE_LITE
    targets = np.random.default_rng(5).choice(LEVELS, size=(2, REFERENCE.columns))
    results = [Chip(ModelTransport(config, seed=5), config).program(0, targets) for config in (REFERENCE, REFERENCE_LITE)]
    assert [r.target_bits for r in results] == [3, 8]
    assert results[0].pulses is None and results[0].mean_pulses == results[0].pulses_total / targets.size > 0


# Decide MVMs in co-simulation: (direction, in_bits, out_bits, conversion, threshold code, K, M).
DECIDE_SAMPLE = [("forward", 4, 4, "sar", 24, 8, 2), ("backward", 2, 3, "count", 1, 3, 1),
                 ("forward", 2, 4, "count", 24, 15, 15)]


def exercise_decide(chip: Chip) -> dict:
    """Rows 0-1 of core 1 programmed, every line's bias and LFSR seeded, then decide MVMs of the sample
    (each reseeding K and M), every LFSR state read back after each, then a plain MVM."""
    rng = np.random.default_rng(5)
    seen = {"program": chip.program(1, rng.choice(LEVELS, (2, REFERENCE.columns))).codes}
    lines = REFERENCE.mvm_lines
    biases = rng.integers(-3, 4, lines)
    states = rng.integers(1, 1 << 32, lines, dtype=np.uint64)
    for direction, in_bits, out_bits, conversion, threshold, draws, magnitude in DECIDE_SAMPLE:
        chip.set_stochastic(biases, states, draws, magnitude)
        x = rng.integers(-(1 << in_bits) + 1, 1 << in_bits, REFERENCE.rows if direction == "forward" else REFERENCE.neurons)
        if direction == "forward":
            x[2:] = 0
        y = chip.mvm(1, x, direction, in_bits, out_bits, conversion, threshold_code=threshold, decide=True)
        states = chip.lfsr_states()
        seen[direction, draws] = (y, states, chip.mvm_counters()["mvm_samples"])
        y = chip.mvm(1, x, direction, in_bits, out_bits, conversion, threshold_code=threshold)
        seen[direction, draws, "plain"] = (y, chip.lfsr_states(), chip.mvm_counters()["mvm_samples"])
    seen["status"] = chip.status() & (StatusBit.MVM_DONE | StatusBit.BUSY | StatusBit.ERROR)
    return seen


def test_decide_mvms_over_frames_equal_the_model_bit_for_bit(verilator_chip_build):
    """The stochastic neurons on chip (rtl/mvm.py's decide mode) against the model's (models/stochastic.py),
    through SPI: the same decisions and the same LFSR states read back, forward and backward, K and M from
    1 to 15; a plain MVM afterwards leaves the LFSRs alone."""
    model = exercise_decide(Chip(ModelTransport(REFERENCE, seed=13)))
    with CosimTransport(config=REFERENCE, seed=13, built=verilator_chip_build, log=lambda *_: None) as transport:
        cosim = exercise_decide(Chip(transport))
        errors = Chip(transport).errors()
    assert errors == [] and cosim.pop("status") == model.pop("status") == StatusBit.MVM_DONE
    assert np.array_equal(cosim.pop("program"), model.pop("program"))
    for key, (y, states, samples) in model.items():
        got, got_states, got_samples = cosim[key]
        assert np.array_equal(y, got), f"{key}: model {y}, chip {got}"
        assert np.array_equal(states, got_states) and samples == got_samples, key
    decided = [model[key][0] for key in model if key[-1] != "plain"]
    assert all(set(np.unique(y)) == {0, 1} for y in decided)                  # both decisions, every MVM
    for direction, draws in (key for key in model if key[-1] != "plain"):
        assert np.array_equal(model[direction, draws][1], model[direction, draws, "plain"][1])
        assert np.abs(model[direction, draws, "plain"][0]).max() > 1         # the counts were not all 0/1


def test_stochastic_requests_are_refused_before_a_frame():
    """Bad biases, seeds, K or M, and decide on a build without stochastic neurons, raise before the
    transport sees a frame."""
    from rram_cim.config import REFERENCE_LITE

    class NoFrames:
        def exchange(self, frame):
            raise AssertionError(f"a frame went out: {frame!r}")

    lines = REFERENCE.mvm_lines
    seeds = np.arange(1, lines + 1)
    chip = Chip(NoFrames(), REFERENCE)
    for biases, seeds_, kwargs, match in [
            (np.zeros(lines - 1, int), seeds, {}, "biases are 64"), (np.full(lines, 1 << 15), seeds, {}, "32767"),
            (np.zeros(lines), seeds, {}, "integers"), (np.zeros(lines, int), np.zeros(lines, int), {}, "non-zero"),
            (np.zeros(lines, int), np.full(lines, 1 << 32), {}, "32-bit"),
            (np.zeros(lines, int), seeds, {"draws": 0}, "draws"), (np.zeros(lines, int), seeds, {"magnitude": 16}, "magnitude")]:
        with pytest.raises(ValueError, match=match):
            chip.set_stochastic(biases, seeds_, **kwargs)
    with pytest.raises(TypeError, match="decide"):
        chip.mvm(0, np.zeros(REFERENCE.rows, int), decide=1)
    for config in (REFERENCE_LITE, REFERENCE.replace(name="no-stochastic", mvm_stochastic=False)):
        lite = Chip(NoFrames(), config)
        with pytest.raises(ChipError, match="no stochastic neurons"):
            lite.mvm(0, np.zeros(config.rows, int), decide=True)
        with pytest.raises(ChipError, match="no stochastic neurons"):
            lite.set_stochastic(np.zeros(lines, int), seeds)
        with pytest.raises(ChipError, match="no stochastic neurons"):
            Chip(ModelTransport(config), config).lfsr_states()
