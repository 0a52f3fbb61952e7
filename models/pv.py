"""Reference program-and-verify algorithms, vectorized over all cells being programmed.

These are the algorithms the RTL P&V engine implements, written with DAC and ADC *codes* (through
`ChipConfig`'s code-to-physics scales) so that a later bench can compare the chip's pulse sequence with
this one pulse for pulse:

* ISPVA (incremental step pulse with verify): fixed gate voltage (compliance), top-electrode voltage
  stepped up after each failed verify (Milo et al., APL Materials 7, 081120, 2019; Weebit/CEA-Leti).
* IGVVA (incremental gate voltage with verify): fixed top-electrode voltage high enough to complete the
  SET, gate voltage stepped up, so each pulse sets the cell to a slightly higher compliance level.
* Incremental (the stepped voltage rises after each pulse) or cumulative (the same pulse repeated).
* RESET on overshoot: a cell verified above its window gets a RESET pulse and its ramp starts again;
  without it, an overshoot is a failure (SET cannot lower a conductance).
* Square or triangular pulses, a maximum pulse count, a verify window in ADC codes.
* Averaged verify reads: each verify senses a cell `verify_reads` times (a power of two, the chip's
  `PV.verify.reads_log2`) and decides on the mean ADC code, rounded half up; read noise shrinks by
  sqrt(N). A confirming read (`confirm`, NeuRRAM's second verify): a cell that verifies is read (averaged)
  once more, with no pulse between, and passes only if that read verifies too; else programming goes on
  from the second read's code. Without them, one lucky read inside the window passes a cell whose
  conductance lies outside it (2 % read noise is wider than a +-1 uS window above ~50 uS).
* RADAR (Levy et al., IEEE TED 68(9), 2021; docs/pv_engine.md says what is theirs and what we assumed):
  a coarse phase, SET pulses at the full top-electrode code `bl_stop` with the gate stepped from
  `wl_start` by `wl_step` (ISPP on the word line), until the cell first overshoots its window; then a
  fine phase around the window, at the last coarse gate: below it, SET pulses with the top electrode
  ramped from `bl_start` by `bl_step` up to `bl_stop`; above it, RESET pulses with the source line ramped
  from `sl_reset` by `sl_step` up to `sl_stop`. Each ramp starts over when the direction changes.
* Forming: FORM pulses with the top electrode ramped as in ISPVA (the gate at `wl_start` sets the
  forming compliance) until the cell reads at least `target - window`; a formed cell above its window
  passes too (levels are programmed afterwards).

Each cell runs its own little state machine; all cells advance together one pulse per iteration, so
the cost is (pulses of the slowest cell) x (numpy work on the whole array).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..config import READ_DISTURB_LIMIT_V, REFERENCE, ChipConfig
from ..protocol import DAC_FIELDS, RECIPE_FIELDS, Algorithm, Op
from .device import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray, Shape
from .pulses import relative_codes, relative_waveform

__all__ = ["Algorithm", "PVSettings", "PVResult", "program_and_verify", "adc_codes", "averaged_codes", "VERIFY_READS",
           "igvva_level_recipes", "widened_windows", "check_level_recipes"]


#: Reads a verify may average: powers of two, so the chip divides by a shift (PV.verify.reads_log2).
VERIFY_READS = (1, 2, 4, 8)


@dataclass(frozen=True)
class PVSettings:
    """One P&V recipe, in DAC/ADC codes, as the chip's registers hold it."""
    algorithm: Algorithm = Algorithm.IGVVA
    bl_start: int = 133          # top-electrode (bit-line) DAC code: fixed for IGVVA, ramp start for ISPVA
    bl_step: int = 1
    bl_stop: int = 160
    wl_start: int = 70           # gate (word-line) DAC code: ramp start for IGVVA, fixed for ISPVA
    wl_step: int = 1
    wl_stop: int = 165
    sl_reset: int = 120          # source-line DAC code of a RESET pulse (gate at wl_stop); RADAR's ramp start
    sl_step: int = 0             # RADAR: source-line step between consecutive fine-phase RESETs
    sl_stop: int = 0             # RADAR: the source-line ramp's top (at least sl_reset)
    pulse_width: int = 8         # system cycles
    max_pulses: int = 100
    window: int = 2              # accepted: |ADC code - target| <= window
    cumulative: bool = False
    reset_on_overshoot: bool = True
    shape: Shape = Shape.SQUARE
    form: bool = False           # a forming run instead of programming
    v_read: float = READ_DISTURB_LIMIT_V   # volts across the cell during verify (SPIRIT's 100 mV limit)
    verify_reads: int = 1        # reads averaged per verify: 1, 2, 4 or 8 (PV.verify.reads_log2)
    confirm: bool = False        # a second (averaged) verify before a cell passes (PV.verify.confirm)

    def __post_init__(self):
        for name in (*DAC_FIELDS, "window"):
            if getattr(self, name) < 0:
                raise ModelInputError(f"PVSettings.{name} = {getattr(self, name)} is negative")
        if self.pulse_width < 1 or self.max_pulses < 1:
            raise ModelInputError("PVSettings: pulse_width and max_pulses must be at least 1")
        if self.bl_stop < self.bl_start or self.wl_stop < self.wl_start:
            raise ModelInputError("PVSettings: a ramp's stop code is below its start code")
        if self.sl_step < 0 or self.sl_stop < 0:
            raise ModelInputError("PVSettings: sl_step and sl_stop must not be negative")
        if self.algorithm is Algorithm.RADAR and self.sl_stop < self.sl_reset:
            raise ModelInputError(f"PVSettings: RADAR's source-line ramp stops at {self.sl_stop}, below its "
                                  f"start sl_reset = {self.sl_reset}")
        if self.verify_reads not in VERIFY_READS:
            raise ModelInputError(f"PVSettings.verify_reads = {self.verify_reads}: the chip averages "
                                  f"{', '.join(map(str, VERIFY_READS))} reads per verify")

    @property
    def reads_log2(self) -> int:
        """`verify_reads` as the chip's register field holds it."""
        return self.verify_reads.bit_length() - 1

    def check_codes(self, config: ChipConfig):
        top = (1 << config.dac_bits) - 1
        for name in (*(name for name in DAC_FIELDS if not name.endswith("_step")), "sl_stop"):
            if getattr(self, name) > top:
                raise ModelInputError(f"PVSettings.{name} = {getattr(self, name)} exceeds the "
                                      f"{config.dac_bits}-bit DAC (max {top})")


@dataclass
class PVResult:
    pulses: np.ndarray            # per cell, pulses applied (SET + RESET)
    passed: np.ndarray            # per cell, verified inside its window
    targeted: np.ndarray          # per cell, had a target
    final_code: np.ndarray        # per cell, ADC code of the last verify
    #: Every pulse, in order: iteration, row, column, kind (the port's `Op`), bl, wl, sl codes (one row per pulse).
    log: np.ndarray = field(repr=False, default=None)
    iterations: int = 0

    @property
    def failed(self) -> np.ndarray:
        return self.targeted & ~self.passed

    def sequence(self, row: int, column: int) -> np.ndarray:
        """The pulses one cell received, in order (rows of the log)."""
        mine = (self.log["row"] == row) & (self.log["column"] == column)
        return self.log[mine]


LOG_DTYPE = np.dtype([("iteration", np.int32), ("row", np.int32), ("column", np.int32),
                      ("kind", np.int8), ("bl", np.int32), ("wl", np.int32), ("sl", np.int32),
                      ("width", np.int32)])


def adc_codes(g_us: np.ndarray, config: ChipConfig = REFERENCE) -> np.ndarray:
    """What the sense ADC returns for conductances `g_us` (NaN for unread cells reads as 0)."""
    top = (1 << config.adc_bits) - 1
    return np.clip(np.rint(np.nan_to_num(g_us) / config.us_per_adc_lsb), 0, top).astype(np.int64)


def averaged_codes(array: ReRAMArray, v_read: float, select, reads: int, config: ChipConfig = REFERENCE) -> np.ndarray:
    """The chip's averaged verify read of the cells `select` picks: `reads` senses (a power of two), each
    an ADC code, their sum divided by a shift after adding half the count (the mean rounded half up), as
    the engine computes it. Unselected cells read 0."""
    if reads not in VERIFY_READS:
        raise ModelInputError(f"{reads} reads per verify: the chip averages {', '.join(map(str, VERIFY_READS))}")
    total = sum(adc_codes(array.read(v_read, select), config) for _ in range(reads))
    return (total + reads // 2) >> (reads.bit_length() - 1)


#: What may differ between levels: a per-level table entry's recipe fields.
PER_LEVEL_FIELDS = RECIPE_FIELDS
SHARED_FIELDS = ("algorithm", "cumulative", "reset_on_overshoot", "shape", "form", "v_read", "verify_reads",
                 "confirm", "sl_step", "sl_stop")


def igvva_level_recipes(codes, base: PVSettings, config: ChipConfig = REFERENCE,
                        params: DeviceParams = HFO2_1T1R, sigmas: float = 3.0) -> dict[int, PVSettings]:
    """Per-level IGVVA recipes from the device model, in the spirit of EMBER's per-level controller
    settings: each level's gate ramp starts where the compliance (I_C = k (V_G - V_T)^2, R = V_C / I_C)
    sits `sigmas` cycle-to-cycle spreads below the level, and stops as far above it, so a cell climbs
    only the last few steps instead of the whole range. `base` gives everything else (top-electrode code,
    RESET code, width, budget, window)."""
    recipes = {}
    top = (1 << config.dac_bits) - 1
    lsb = config.wl_volts_per_lsb
    for code in sorted(set(int(c) for c in codes)):
        g_us = code * config.us_per_adc_lsb
        spread = sigmas * params.g_cc_sigma
        def gate(g):
            return params.v_t + np.sqrt(max(g, 0.0) * params.v_c / params.k_ua_per_v2)
        start = int(np.floor(gate(g_us * (1 - spread)) / lsb))
        stop = int(np.ceil(gate(g_us * (1 + spread)) / lsb)) + int(np.ceil(sigmas * params.v_t_sigma / lsb))
        recipes[code] = replace(base, algorithm=Algorithm.IGVVA, wl_start=min(start, top),
                                wl_stop=min(max(stop, start), top), wl_step=max(base.wl_step, 1))
    return recipes


def widened_windows(recipes: dict[int, PVSettings], config: ChipConfig = REFERENCE,
                    params: DeviceParams = HFO2_1T1R, sigmas: float = 6.0) -> dict[int, PVSettings]:
    """Per-level recipes {target code: PVSettings} whose windows widen with the level: each level's
    half-width becomes `sigmas` read-noise spreads of one verify (the device's read noise at the level,
    sqrt(verify_reads) smaller for averaged reads), never narrower than the recipe's own window and never
    as wide as half the spacing to the nearest other level (at most floor((spacing - 1) / 2) codes), so
    neighbouring windows never touch. Read noise grows with conductance (2 % in the default device), so a
    window fixed in codes that holds at 10 uS is narrower than one read's spread at 100 uS: a cell there
    passes on a lucky read and reads back outside."""
    codes = sorted(int(code) for code in recipes)
    if sigmas <= 0:
        raise ModelInputError(f"sigmas = {sigmas}: a window widens by a positive number of read-noise spreads")
    out = {}
    for code in codes:
        recipe = recipes[code]
        g_us = code * config.us_per_adc_lsb
        spread = float(np.hypot(params.read_noise_rel * g_us, params.read_noise_abs_us)) / config.us_per_adc_lsb
        window = max(recipe.window, int(np.ceil(sigmas * spread / np.sqrt(recipe.verify_reads))))
        gaps = [abs(code - other) for other in codes if other != code]
        if gaps:
            window = min(window, max((min(gaps) - 1) // 2, recipe.window))
        out[code] = replace(recipe, window=window)
    return out


def check_level_recipes(recipes: dict, codes, config: ChipConfig, ignore: tuple[str, ...] = ()) -> PVSettings:
    """Check per-level recipes {target code: PVSettings} for target `codes`: every code has one, they
    agree on the shared fields (but those in `ignore`), their DAC codes fit. Returns one of them, whose
    shared fields stand for all."""
    for name in SHARED_FIELDS:
        values = {getattr(each, name) for each in recipes.values()}
        if len(values) > 1 and name not in ignore:
            raise ModelInputError(f"levels disagree on {name} ({values}); only "
                                  f"{', '.join(PER_LEVEL_FIELDS)} may differ between levels")
    missing = sorted(set(np.unique(codes).tolist()) - set(recipes))
    if missing:
        raise ModelInputError(f"no recipe for target codes of level(s) {missing}")
    for each in recipes.values():
        each.check_codes(config)
    return next(iter(recipes.values()))


class _CellSettings:
    """Settings as per-cell arrays, so cells of different target levels run their own recipe."""

    def __init__(self, settings, targets: np.ndarray, config: ChipConfig):
        if isinstance(settings, PVSettings):
            settings = {int(level): settings for level in np.unique(targets[targets >= 0])}
        first = check_level_recipes(settings, targets[targets >= 0], config)
        for name in SHARED_FIELDS:
            setattr(self, name, getattr(first, name))
        for name in PER_LEVEL_FIELDS:
            per_cell = np.zeros(targets.shape, dtype=np.int64)
            for level, each in settings.items():
                per_cell[targets == level] = getattr(each, name)
            setattr(self, name, per_cell)


def program_and_verify(array: ReRAMArray, targets: np.ndarray, settings,
                       config: ChipConfig = REFERENCE) -> PVResult:
    """Program every cell whose target ADC code is >= 0 into `target +- window`.

    `targets` has the array's shape; -1 marks a cell to leave alone. `settings` is one `PVSettings` or,
    as EMBER's controller allows, a mapping from target code to its own `PVSettings` (DAC ramps, RESET
    code, pulse budget and window may differ per level). Returns per-cell pulse counts, pass/fail and
    the full pulse log. A stuck cell never verifies and stops at its `max_pulses`.
    """
    targets = np.asarray(targets)
    if targets.shape != array.shape:
        raise ModelInputError(f"targets have shape {targets.shape}, the array is {array.shape}")
    top = (1 << config.adc_bits) - 1
    if np.any(targets > top) or np.any(targets < -1):
        raise ModelInputError(f"targets must be ADC codes 0..{top} (or -1 to skip)")
    if not isinstance(settings, (PVSettings, dict)):
        raise ModelInputError("settings must be a PVSettings or a dict {target code: PVSettings}")
    s = _CellSettings(settings, targets, config)
    dt_s = config.seconds_per_cycle
    select_read = targets >= 0

    def verified(code):
        if s.form:
            return code >= targets - s.window         # formed: any conductance from the window up
        return np.abs(code - targets) <= s.window

    def apply(pulse, cells, v_driven, amplitude_codes, v_wl):
        """Pulse `cells`, each with its level's width and the waveform the macro sees from its DAC codes."""
        for width in np.unique(s.pulse_width[cells]):
            group = cells & (s.pulse_width == width)
            waveform = (relative_waveform(int(width), s.shape) if s.shape is Shape.SQUARE
                        else relative_codes(amplitude_codes[group], int(width), s.shape))
            pulse(group, v_driven, v_wl, waveform, dt_s)

    def sense(cells):
        """Verify `cells`: the averaged read, then, if asked, a confirming one of those that verified. Returns
        the codes (the confirming read's where there was one) and which cells passed."""
        code = averaged_codes(array, s.v_read, cells, s.verify_reads, config)
        ok = cells & verified(code)
        if s.confirm and ok.any():
            code = np.where(ok, averaged_codes(array, s.v_read, ok, s.verify_reads, config), code)
            ok &= verified(code)
        return code, ok

    targeted = select_read
    code, passed = sense(select_read)
    active = targeted & ~passed
    pulses = np.zeros(array.shape, dtype=np.int64)
    ramp = np.zeros(array.shape, dtype=np.int64)      # steps taken on the current ramp
    radar = s.algorithm is Algorithm.RADAR and not s.form
    if radar:
        # Each cell's DAC codes as the engine holds them: the next coarse gate, the last coarse gate (the
        # fine phase's), the fine SET's bit line and the fine RESET's source line, and the phase.
        wl_now, wl_last, bl_now = s.wl_start.copy(), s.wl_start.copy(), s.bl_start.copy()
        sl_now = np.broadcast_to(s.sl_reset, array.shape).copy()
        fine = np.zeros(array.shape, bool)
    sl = np.broadcast_to(s.sl_reset, array.shape)
    logs = []
    iteration = 0
    while active.any():
        low = active & (code < targets - s.window)
        high = active & ~low & ~verified(code)
        if not s.reset_on_overshoot:
            active &= ~high                              # an overshoot it cannot undo: give up on it
            high[:] = False
        if radar:
            bl = np.where(fine, bl_now, s.bl_stop)
            wl = np.where(fine, wl_last, wl_now)
            sl = sl_now.copy()
        elif s.algorithm is Algorithm.ISPVA or s.form:
            bl = np.minimum(s.bl_start + ramp * s.bl_step, s.bl_stop)
            wl = s.wl_start
        else:
            bl = s.bl_start
            wl = np.minimum(s.wl_start + ramp * s.wl_step, s.wl_stop)
        bl, wl = (np.broadcast_to(codes, array.shape) for codes in (bl, wl))
        if low.any():
            apply(array.form if s.form else array.set_pulse, low, bl * config.bl_volts_per_lsb, bl,
                  wl * config.wl_volts_per_lsb)
        if high.any():
            apply(array.reset_pulse, high, sl * config.sl_volts_per_lsb, sl, s.wl_stop * config.wl_volts_per_lsb)
        pulsed = low | high
        logs.append(_log_rows(iteration, low, high, bl, wl, sl, s))
        pulses += pulsed
        if radar:
            coarse_set, fine_set = low & ~fine, low & fine
            wl_last = np.where(coarse_set, wl_now, wl_last)
            if not s.cumulative:
                wl_now = np.where(coarse_set, np.minimum(wl_now + s.wl_step, s.wl_stop), wl_now)
                bl_now = np.where(fine_set, np.minimum(bl_now + s.bl_step, s.bl_stop), bl_now)
                sl_now = np.where(high, np.minimum(sl_now + s.sl_step, s.sl_stop), sl_now)
            sl_now = np.where(fine_set, s.sl_reset, sl_now)  # a change of direction starts the other ramp over
            bl_now = np.where(high, s.bl_start, bl_now)
            fine |= high
        if not s.cumulative:
            ramp = np.where(low, ramp + 1, ramp)
        ramp = np.where(high, 0, ramp)                   # after a RESET the ramp starts over
        sensed, ok = sense(pulsed)
        code = np.where(pulsed, sensed, code)
        passed |= ok
        active &= ~passed & (pulses < s.max_pulses)
        iteration += 1
    log = np.concatenate(logs) if logs else np.zeros(0, LOG_DTYPE)
    return PVResult(pulses=pulses, passed=passed, targeted=targeted, final_code=code, log=log,
                    iterations=iteration)


def _log_rows(iteration, low, high, bl, wl, sl, s: _CellSettings) -> np.ndarray:
    rows, columns = np.nonzero(low | high)
    out = np.zeros(rows.size, LOG_DTYPE)
    out["iteration"] = iteration
    out["row"], out["column"] = rows, columns
    is_set = low[rows, columns]
    out["kind"] = np.where(is_set, Op.FORM if s.form else Op.SET, Op.RESET)
    out["bl"] = np.where(is_set, bl[rows, columns], 0)
    out["wl"] = np.where(is_set, wl[rows, columns], s.wl_stop[rows, columns])
    out["sl"] = np.where(is_set, 0, sl[rows, columns])
    out["width"] = s.pulse_width[rows, columns]
    return out
