"""1T1R HfO2 ReRAM cells, vectorized over a whole array.

A behavioural model at the level the control plane needs: what one programming pulse does to each cell's
conductance, how a read sees it, and how it drifts afterwards. Conductances are in microsiemens (`_us`),
voltages in volts (`v_`), times in seconds (`_s`) unless the name says otherwise.

Physics, in short (sources next to each parameter):
* SET grows the filament until the access transistor's compliance current I_C stops it; the LRS then
  has R ~= V_C / I_C (Ielmini's universal SET relation), so the gate voltage sets the final conductance.
  Below full completion, growth is a voltage-accelerated rate process: tau = tau0 * exp(-(V - V_set)/V0),
  so the top-electrode voltage and the pulse width decide how far a partial SET goes (ISPVA's knob).
* RESET is gradual: the conductance falls exponentially with the source-line overdrive above a threshold.
* Each cell has its own thresholds and transistor (device-to-device), each pulse its own jitter
  (cycle-to-cycle); reads add noise; after programming the conductance relaxes, mostly within an hour.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields

import numpy as np

from ..config import READ_DISTURB_LIMIT_V
from .cell_noise import CellNoise, Stream

__all__ = ["DeviceParams", "ReRAMArray", "Stuck", "Shape", "ModelInputError", "HFO2_1T1R"]


class ModelInputError(ValueError):
    """An argument a physical model cannot accept (wrong shape, negative conductance, voltage too high)."""


class Stuck(enum.IntEnum):
    NONE = 0
    HIGH = 1      # stuck-at-LRS: a filament that no RESET dissolves
    LOW = 2       # stuck-at-HRS: a cell that never forms or sets


class Shape(enum.Enum):
    SQUARE = "square"
    TRIANGULAR = "triangular"


@dataclass(frozen=True)
class DeviceParams:
    """HfO2 1T1R cell parameters. Each value cites where its order of magnitude comes from."""

    # -- conductance range ----------------------------------------------------------------------------
    #: Pristine (unformed) cells conduct ~10-100 MOhm: forming is needed before any SET
    #: (Grossi et al., "Fundamental variability limits of filament-based RRAM", IEDM 2016).
    g_pristine_us: float = 0.05
    #: Deepest HRS reachable by RESET, ~1 MOhm (Milo et al., "Multilevel HfO2-based RRAM devices for
    #: low-power neuromorphic networks", APL Materials 7, 081120, 2019: HRS ~ 1-10 uS region).
    g_min_us: float = 1.0
    #: Strongest LRS the cell supports (~7 kOhm), above the 120 uS top level of the same work.
    g_max_us: float = 150.0

    # -- access transistor: compliance current from the gate (word-line) voltage ----------------------
    #: Threshold voltage and gain of the NMOS in saturation, I_C = k (V_G - V_T)^2; 130 nm-class
    #: devices (Milo 2019 program with V_G = 0.8-2 V for I_C of a few to ~100 uA).
    v_t: float = 0.6
    k_ua_per_v2: float = 50.0
    #: Device-to-device spread of V_T (transistor mismatch), volts.
    v_t_sigma: float = 0.01
    #: Universal SET relation R_LRS = V_C / I_C with V_C ~ 0.4 V (Ielmini, "Modeling the universal
    #: set/reset characteristics of bipolar RRAM...", IEEE TED 58(12), 2011).
    v_c: float = 0.4
    #: Cycle-to-cycle spread of the compliance-limited conductance, relative (a few percent in
    #: compliance-controlled SET: Milo 2019, IGVVA levels).
    g_cc_sigma: float = 0.03
    #: Soft ceiling of the compliance-limited conductance, uS: with it the law becomes steep, then
    #: saturating, G = g_sat (1 - exp(-G_sq / g_sat)) with G_sq = I_C / V_C as above, as RADAR's
    #: technology shows (Levy et al., IEEE TED 2021: conductance after a 200 ns gate staircase levels
    #: off near 240 uS from ~2.5 V; `models/measured/radar_2bpc.json`, "gate_sweep"). 0 (the default)
    #: keeps the plain square law.
    g_sat_us: float = 0.0

    # -- SET kinetics (top-electrode voltage and pulse width) ------------------------------------------
    #: SET threshold on the top electrode and its spreads (HfO2 1T1R SET at ~1-1.5 V on the bit line:
    #: Milo 2019; Ielmini 2011 for the exponential voltage-time dependence).
    v_set: float = 1.2
    v_set_d2d_sigma: float = 0.08
    v_set_c2c_sigma: float = 0.05
    #: tau = tau0 * exp(-(V - V_set) / V0): one decade of speed per ~0.12 V (Ielmini 2011's
    #: voltage-time trade-off of SET, ~ a decade per 100-150 mV).
    set_tau0_s: float = 1e-6
    set_v0: float = 0.05

    # -- forming ---------------------------------------------------------------------------------------
    #: Forming voltage of pristine HfO2 1T1R cells, ~3 V with ~0.2 V spread (Grossi 2016).
    v_form: float = 3.0
    v_form_sigma: float = 0.2

    # -- RESET (source-line voltage) -------------------------------------------------------------------
    #: RESET starts above ~1 V on the source line and deepens gradually with voltage (Milo 2019;
    #: Ielmini 2011: HRS resistance grows exponentially with the RESET stop voltage).
    v_reset: float = 1.0
    reset_v0: float = 0.25
    reset_sigma: float = 0.15

    # -- reads ------------------------------------------------------------------------------------------
    #: Read noise: relative plus absolute floor (NeuRRAM, Wan et al., Nature 608, 2022: read noise of a
    #: few percent of the conductance is what noise-aware training must absorb).
    read_noise_rel: float = 0.02
    read_noise_abs_us: float = 0.1
    #: Reads above 100 mV across the cell risk setting it (SPIRIT, Valentian et al., IEDM 2019 limited
    #: the read drop to 100 mV for that reason); beyond it each read nudges the cell towards LRS. The
    #: project's one read limit (`rram_cim.config.READ_DISTURB_LIMIT_V`).
    v_read_disturb: float = READ_DISTURB_LIMIT_V
    #: Relative conductance increase per read per volt above the limit (model assumption).
    read_disturb_rate_per_v: float = 0.01

    # -- relaxation -------------------------------------------------------------------------------------
    #: After programming, levels drift and broaden, mostly within the first hour (SPIRIT: relaxation
    #: "on a very short time scale (less than one hour)"; Weebit/CEA-Leti P&V material). Drift mean and
    #: spread are relative to the programmed conductance, plus an absolute spread; NeuRRAM's relaxation
    #: broadening is of a few uS.
    relax_mean_rel: float = -0.02
    relax_sigma_rel: float = 0.04
    relax_sigma_abs_us: float = 0.5
    relax_t0_s: float = 1.0
    relax_settle_s: float = 3600.0
    #: Drift after the first hour, as a fraction of the first hour's per decade of time.
    relax_tail_per_decade: float = 0.1
    #: Triangular SET pulses leave a more stable filament (fewer stray oxygen vacancies, Weebit/CEA-Leti
    #: P&V material): their relaxation spread is scaled by this factor (model assumption, < 1).
    relax_triangular_factor: float = 0.7

    # -- endurance and defects --------------------------------------------------------------------------
    #: SET/RESET cycles before a cell wears out and sticks (HfO2 arrays: ~1e6, Grossi et al.,
    #: "Resistive RAM endurance: array-level characterization...", IEEE TED 66(3), 2019).
    endurance_cycles: int = 1_000_000
    #: Stuck-at rates of a fresh array (defaults 0: set them per experiment).
    stuck_high_rate: float = 0.0
    stuck_low_rate: float = 0.0

    #: Highest voltage any terminal may see; above it the model refuses (oxide breakdown territory).
    v_abs_max: float = 5.0

    def __post_init__(self):
        for field in fields(self):
            name, value = field.name, getattr(self, field.name)
            if field.type == "int":
                if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                    raise ModelInputError(f"DeviceParams.{name} = {value!r} must be a positive integer")
                continue
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
                raise ModelInputError(f"DeviceParams.{name} = {value!r} must be a real number")
            if not math.isfinite(value):
                raise ModelInputError(f"DeviceParams.{name} = {value} must be finite")
            if name in _SIGNED_PARAMS:
                continue
            if value < 0:
                raise ModelInputError(f"DeviceParams.{name} = {value} must not be negative")
            if name in _DIVISOR_PARAMS and value == 0:
                raise ModelInputError(f"DeviceParams.{name} = 0 must be positive (the model divides by it)")
        if not -1 < self.relax_mean_rel < 1:
            raise ModelInputError(f"DeviceParams.relax_mean_rel = {self.relax_mean_rel} must lie in (-1, 1): "
                                  "a drift of a whole conductance or more is no relaxation")
        if not self.g_pristine_us < self.g_min_us < self.g_max_us:
            raise ModelInputError("DeviceParams: need g_pristine_us < g_min_us < g_max_us")
        for name in ("stuck_high_rate", "stuck_low_rate"):
            if getattr(self, name) > 1:
                raise ModelInputError(f"DeviceParams.{name} = {getattr(self, name)} is a rate: 0..1")
        if self.stuck_high_rate + self.stuck_low_rate > 1:
            raise ModelInputError("DeviceParams: stuck-at rates add up to more than 1")

    def compliance_us(self, v_g: np.ndarray, v_t: np.ndarray) -> np.ndarray:
        """Conductance the compliance current limits a SET to, for gate voltage `v_g`."""
        i_c_ua = self.k_ua_per_v2 * np.square(np.maximum(v_g - v_t, 0.0))
        if self.g_sat_us > 0:
            return self.g_sat_us * -np.expm1(-(i_c_ua / self.v_c) / self.g_sat_us)
        return i_c_ua / self.v_c


#: Parameters that may be negative, and those that divide (zero would make them infinite).
_SIGNED_PARAMS = frozenset({"relax_mean_rel"})
_DIVISOR_PARAMS = frozenset({"v_c", "set_tau0_s", "set_v0", "reset_v0", "relax_t0_s", "relax_settle_s",
                             "v_abs_max"})

HFO2_1T1R = DeviceParams()


def _check_voltage(name: str, v, params: DeviceParams):
    v = np.asarray(v, dtype=float)
    low, high = (float(v), float(v)) if v.ndim == 0 else (v.min(), v.max())
    if not 0 <= low <= high <= params.v_abs_max:       # NaN fails every comparison
        raise ModelInputError(f"{name} must be within 0..{params.v_abs_max} V, got {np.min(v):.3g}.."
                              f"{np.max(v):.3g} V")
    return v


def _check_seconds(name: str, value, zero: bool) -> float:
    """A duration: a finite real number of seconds, positive (or also zero when `zero`). NaN would
    spread to every conductance it touches and infinity would pin them at their end state."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelInputError(f"{name} = {value!r} must be a number of seconds")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ModelInputError(f"{name} = {value} s must be a finite {'non-negative' if zero else 'positive'} "
                              "number of seconds")
    return value


# ---- the physics of one pulse or read ------------------------------------------------------------------
# Written once, applied to numpy arrays (many cells) or Python floats (one cell): the same operations in
# the same order, so a cell programmed alone ends bit for bit where it ends programmed with the array.
def _compliance_jittered(p: DeviceParams, v_wl, v_t, draw):
    """Conductance a SET or forming pulse is limited to, with its cycle-to-cycle jitter."""
    return np.clip(p.compliance_us(v_wl, v_t) * np.exp(p.g_cc_sigma * draw), p.g_min_us, p.g_max_us)


def _set_threshold(p: DeviceParams, v_set, draw):
    return v_set + p.v_set_c2c_sigma * draw


def _set_remaining(p: DeviceParams, v_bl, v_set, columns, dt_s: float):
    """Fraction of the way to the compliance level left after a pulse: the product over its samples of
    exp(-dt / tau), tau = tau0 exp(-(V - V_set) / V0). `columns` yields each sample's relative amplitude."""
    exponent = 0.0
    for relative in columns:
        overdrive = v_bl * relative - v_set
        exponent = exponent + dt_s / p.set_tau0_s * np.exp(np.minimum(overdrive / p.set_v0, 50.0))
    return np.exp(-exponent)


def _reset_result(p: DeviceParams, g_now, overdrive, draw):
    """Conductance after a RESET with `overdrive` volts above the threshold: never below the HRS floor,
    and never raising a cell that was already below it."""
    factor = np.exp(-overdrive / p.reset_v0 + p.reset_sigma * draw)
    floor = np.minimum(g_now, p.g_min_us)
    return floor + (g_now - floor) * np.minimum(factor, 1.0)


def _relax_delta(p: DeviceParams, g, draw, triangular: bool):
    spread = p.relax_sigma_rel * g * (p.relax_triangular_factor if triangular else 1.0)
    return p.relax_mean_rel * g + draw * np.hypot(spread, p.relax_sigma_abs_us)


def _disturbed(p: DeviceParams, g, v_read: float):
    return np.minimum(g * (1 + p.read_disturb_rate_per_v * (v_read - p.v_read_disturb)), p.g_max_us)


def _read_value(p: DeviceParams, g, draw):
    return np.maximum(g + draw * np.hypot(p.read_noise_rel * g, p.read_noise_abs_us), 0.0)


class ReRAMArray:
    """A rows x columns array of 1T1R cells. All state is numpy arrays; randomness only through `rng`
    (device-to-device draws at construction, then a key for the per-cell cycle-to-cycle streams).

    Pulses take a boolean `select` mask (rows x columns) of the cells that see the pulse, and per-cell or
    scalar voltages; the waveform is a list of voltage samples of `dt_s` each (see `models.pulses`).
    """

    def __init__(self, rows: int, columns: int, rng: np.random.Generator,
                 params: DeviceParams = HFO2_1T1R, formed: bool = False):
        if rows < 1 or columns < 1:
            raise ModelInputError(f"array must have at least one row and column, got {rows}x{columns}")
        if not isinstance(rng, np.random.Generator):
            raise ModelInputError("rng must be a numpy.random.Generator (reproducible per seed)")
        self.params = p = params
        self.shape = (rows, columns)
        # Device-to-device parameters, drawn once.
        self.v_t = rng.normal(p.v_t, p.v_t_sigma, self.shape)
        self.v_set = rng.normal(p.v_set, p.v_set_d2d_sigma, self.shape)
        self.v_form = rng.normal(p.v_form, p.v_form_sigma, self.shape)
        draw = rng.random(self.shape)
        self.stuck = np.full(self.shape, Stuck.NONE, dtype=np.int8)
        self.stuck[draw < p.stuck_high_rate] = Stuck.HIGH
        self.stuck[(draw >= p.stuck_high_rate) & (draw < p.stuck_high_rate + p.stuck_low_rate)] = Stuck.LOW
        # State.
        self.formed = np.full(self.shape, formed)
        self.g_us = np.where(self.formed, p.g_min_us, p.g_pristine_us)
        self.g_us[self.stuck == Stuck.HIGH] = p.g_max_us
        self.g_us[self.stuck == Stuck.LOW] = p.g_pristine_us
        self.set_pulses = np.zeros(self.shape, dtype=np.int64)
        self.reset_pulses = np.zeros(self.shape, dtype=np.int64)
        # Relaxation: the conductance right after programming, the drift it will reach at t_settle, the
        # time since programming.
        self.g_programmed_us = self.g_us.copy()
        self.relax_delta_us = np.zeros(self.shape)
        self.age_s = np.zeros(self.shape)
        # Cycle-to-cycle randomness: per-cell streams, so a cell's history does not depend on which other
        # cells were pulsed with it (the RTL engine visits cells one by one, the reference all at once).
        self.noise = CellNoise(self.shape, rng)

    # ---- helpers --------------------------------------------------------------------------------------
    # Operations work on flat cell indices: a whole-array mask and a single cell go through the same
    # arithmetic (so the one-cell path of the analog macro and the vectorized P&V reference agree bit for
    # bit), and a single cell costs a few small numpy calls instead of whole-array ones.
    def _mask(self, select) -> np.ndarray:
        select = np.asarray(select, dtype=bool)
        if select.shape != self.shape:
            raise ModelInputError(f"select mask has shape {select.shape}, array is {self.shape}")
        return select

    def _index(self, select) -> np.ndarray:
        """Flat indices of the selected cells: `select` is a boolean mask of the array's shape or a
        (rows, columns) pair of integers or index arrays."""
        if isinstance(select, tuple):
            row, column = select
            if isinstance(row, (int, np.integer)) and isinstance(column, (int, np.integer)):   # one cell
                if not (0 <= row < self.shape[0] and 0 <= column < self.shape[1]):
                    raise ModelInputError(f"cell ({row}, {column}) lies outside the {self.shape[0]}x{self.shape[1]} array")
                return np.array([row * self.shape[1] + column])
            rows, columns = (np.atleast_1d(np.asarray(each, dtype=np.int64)) for each in select)
            if rows.shape != columns.shape:
                raise ModelInputError(f"row and column indices differ in shape: {rows.shape}, {columns.shape}")
            if np.any((rows < 0) | (rows >= self.shape[0]) | (columns < 0) | (columns >= self.shape[1])):
                raise ModelInputError(f"a selected cell lies outside the {self.shape[0]}x{self.shape[1]} array")
            index = np.unique(rows * self.shape[1] + columns)
            return index
        return np.flatnonzero(self._mask(select))

    def _flat(self, name: str) -> np.ndarray:
        """A writable flat view of a state array (made contiguous first if someone replaced it)."""
        value = getattr(self, name)
        if not value.flags.c_contiguous or not value.flags.writeable:
            value = np.array(value, order="C")
            setattr(self, name, value)
        return value.reshape(-1)

    def _at(self, name: str, value, index: np.ndarray) -> np.ndarray:
        """A voltage (scalar or per cell over the whole array), checked, at the selected cells."""
        value = _check_voltage(name, value, self.params)
        if value.ndim == 0:
            return value
        if value.shape != self.shape:
            raise ModelInputError(f"{name} has shape {value.shape}; give a scalar or {self.shape}")
        return value.reshape(-1)[index]

    @staticmethod
    def _waveform(samples) -> np.ndarray:
        """Relative amplitudes of a pulse's samples (1.0 = the programmed amplitude): one row shared by
        every selected cell, or one row per selected cell (cells x samples, cells in row-major order)."""
        samples = np.asarray(samples, dtype=float)
        if samples.ndim not in (1, 2) or samples.size == 0 or not 0 <= samples.min() <= samples.max() <= 1:
            raise ModelInputError("pulse waveform must be a non-empty 1-D (or cells x samples) array of "
                                  "values in [0, 1]")
        return samples

    def _programmed(self, changed: np.ndarray, triangular: bool):
        """Restart relaxation for the cells (flat indices) a pulse changed, drawing their drift."""
        p = self.params
        if changed.size == 0:
            return
        g = self.g_us.reshape(-1)[changed]
        self._flat("g_programmed_us")[changed] = g
        self._flat("relax_delta_us")[changed] = _relax_delta(p, g, self.noise.draw(Stream.RELAX, changed), triangular)
        self._flat("age_s")[changed] = 0.0

    def _wear(self, index: np.ndarray):
        worn = index[(self.set_pulses.reshape(-1)[index] + self.reset_pulses.reshape(-1)[index]
                      >= self.params.endurance_cycles) & (self.stuck.reshape(-1)[index] == Stuck.NONE)]
        if worn.size == 0:
            return
        # A worn-out cell keeps the state it had: stuck high if it was in LRS, low otherwise.
        mid = 0.5 * (self.params.g_min_us + self.params.g_max_us)
        high = self.g_us.reshape(-1)[worn] >= mid
        self._flat("stuck")[worn] = np.where(high, Stuck.HIGH, Stuck.LOW)

    # ---- operations -----------------------------------------------------------------------------------
    # `select`: a boolean mask of the array's shape, or a (rows, columns) pair (see `_index`).
    def form(self, select, v_bl, v_wl, waveform=(1.0,), dt_s: float = 1e-6) -> np.ndarray:
        """Forming pulse: cells whose forming voltage is reached form a filament limited by compliance.
        Returns the mask of cells that formed."""
        _check_seconds("dt_s", dt_s, zero=False)
        index = self._index(select)
        v_bl = self._at("v_bl", v_bl, index)
        v_wl = self._at("v_wl", v_wl, index)
        samples = self._waveform(waveform)
        keep = (self.stuck.reshape(-1)[index] == Stuck.NONE) & ~self.formed.reshape(-1)[index]
        index, v_bl, v_wl = index[keep], _pick(v_bl, keep), _pick(v_wl, keep)
        peak = v_bl * _pick_rows(samples, keep).max(axis=-1)
        formed = peak >= self.v_form.reshape(-1)[index]
        g_new = _compliance_jittered(self.params, v_wl, self.v_t.reshape(-1)[index],
                                     self.noise.draw(Stream.FORM, index))
        done = index[formed]
        self._flat("g_us")[done] = np.broadcast_to(g_new, index.shape)[formed]
        self._flat("formed")[done] = True
        self._flat("set_pulses")[index] += 1
        self._programmed(done, triangular=False)
        self._wear(index)
        out = np.zeros(self.shape, bool)
        out.reshape(-1)[done] = True
        return out

    def _responding(self, select, *voltages):
        """Selected cells that are live and formed, with the given voltages at them."""
        index = self._index(select)
        values = [self._at(name, value, index) for name, value in voltages]
        keep = (self.stuck.reshape(-1)[index] == Stuck.NONE) & self.formed.reshape(-1)[index]
        return index[keep], [_pick(value, keep) for value in values], keep

    def set_pulse(self, select, v_bl, v_wl, waveform=(1.0,), dt_s: float = 1e-7) -> None:
        """SET pulse on the top electrode (bit line) with the gate (word line) setting the compliance.

        `waveform` are relative amplitudes per sample of `dt_s` (square: all ones; triangular: a ramp
        up and down), shared or one row per selected cell. Growth towards the compliance-limited
        conductance follows the rate law above.
        """
        p = self.params
        dt_s = _check_seconds("dt_s", dt_s, zero=False)
        samples = self._waveform(waveform)
        index, (v_bl, v_wl), keep = self._responding(select, ("v_bl", v_bl), ("v_wl", v_wl))
        samples = _pick_rows(samples, keep)
        g_now = self.g_us.reshape(-1)[index]
        g_cc = _compliance_jittered(p, v_wl, self.v_t.reshape(-1)[index], self.noise.draw(Stream.SET_COMPLIANCE, index))
        v_set = _set_threshold(p, self.v_set.reshape(-1)[index], self.noise.draw(Stream.SET_THRESHOLD, index))
        remaining = _set_remaining(p, v_bl, v_set, (samples[..., k] for k in range(samples.shape[-1])), dt_s)
        grow = g_cc > g_now
        new_g = np.where(grow, g_cc - (g_cc - g_now) * remaining, g_now)
        changed = grow & (np.abs(new_g - g_now) > 1e-9)
        self._flat("g_us")[index] = new_g
        self._flat("set_pulses")[index] += 1
        shaped = samples.shape[-1] > 1 and bool(np.any(samples[..., 0] < samples.max(axis=-1)))
        self._programmed(index[changed], triangular=shaped)
        self._wear(index)

    def reset_pulse(self, select, v_sl, v_wl, waveform=(1.0,), dt_s: float = 1e-7) -> None:
        """RESET pulse on the source line: the conductance falls with the overdrive above V_reset."""
        p = self.params
        _check_seconds("dt_s", dt_s, zero=False)
        samples = self._waveform(waveform)
        index, (v_sl, _), keep = self._responding(select, ("v_sl", v_sl), ("v_wl", v_wl))  # gate checked too
        peak = v_sl * _pick_rows(samples, keep).max(axis=-1)
        overdrive = np.maximum(peak - p.v_reset, 0.0)
        shrink = np.broadcast_to(overdrive > 0, index.shape)
        g_now = self.g_us.reshape(-1)[index]
        after = _reset_result(p, g_now, overdrive, self.noise.draw(Stream.RESET, index))
        self._flat("g_us")[index] = np.where(shrink, after, g_now)
        self._flat("reset_pulses")[index] += 1
        self._programmed(index[shrink], triangular=False)
        self._wear(index)

    def relax(self, elapsed_s: float) -> None:
        """Let `elapsed_s` seconds pass: each programmed cell moves along its drawn relaxation curve."""
        elapsed_s = _check_seconds("elapsed time", elapsed_s, zero=True)
        self.age_s = self.age_s + elapsed_s
        p = self.params
        first_hour = np.log1p(np.minimum(self.age_s, p.relax_settle_s) / p.relax_t0_s) / np.log1p(
            p.relax_settle_s / p.relax_t0_s)
        tail = p.relax_tail_per_decade * np.log10(np.maximum(self.age_s, p.relax_settle_s) / p.relax_settle_s)
        movable = self.stuck == Stuck.NONE
        relaxed = self.g_programmed_us + self.relax_delta_us * (first_hour + tail)
        self.g_us = np.where(movable, np.clip(relaxed, p.g_pristine_us, p.g_max_us), self.g_us)

    def read(self, v_read: float = 0.1, select=None) -> np.ndarray:
        """Conductances as a read at `v_read` sees them (with read noise); selected cells (all by default)
        are disturbed if `v_read` exceeds the disturb limit. Unselected cells read as NaN."""
        index = np.arange(self.g_us.size) if select is None else self._index(select)
        out = np.full(self.shape, np.nan)
        out.reshape(-1)[index] = self.read_cells(v_read, index)
        return out

    def read_cells(self, v_read: float, index) -> np.ndarray:
        """What a read sees at the flat cell indices `index` (distinct), as a 1-D array."""
        p = self.params
        v_read = float(_check_voltage("v_read", v_read, p))
        index = np.asarray(index, dtype=np.int64)
        g = self._flat("g_us")
        if v_read > p.v_read_disturb:
            nudged = index[(self.stuck.reshape(-1)[index] == Stuck.NONE) & self.formed.reshape(-1)[index]]
            g[nudged] = _disturbed(p, g[nudged], v_read)
        return _read_value(p, g[index], self.noise.draw(Stream.READ, index))


    # ---- one cell at a time --------------------------------------------------------------------------
    # The analog macro's traffic: one pulse or read of one cell per call. The same kernels as the
    # whole-array methods, on Python floats, without masks or index arrays (~10x faster per call).
    def _one(self, row: int, column: int) -> int:
        if not (0 <= row < self.shape[0] and 0 <= column < self.shape[1]):
            raise ModelInputError(f"cell ({row}, {column}) lies outside the {self.shape[0]}x{self.shape[1]} array")
        return row * self.shape[1] + column

    def _samples(self, waveform) -> list[float]:
        samples = [float(x) for x in waveform]
        if not samples or not 0 <= min(samples) <= max(samples) <= 1:
            raise ModelInputError("pulse waveform must be a non-empty sequence of values in [0, 1]")
        return samples

    def _responds(self, i: int) -> bool:
        return self.stuck.reshape(-1)[i] == Stuck.NONE and bool(self.formed.reshape(-1)[i])

    def _programmed_one(self, i: int, triangular: bool):
        g = float(self.g_us.reshape(-1)[i])
        self._flat("g_programmed_us")[i] = g
        self._flat("relax_delta_us")[i] = _relax_delta(self.params, g, self.noise.draw_one(Stream.RELAX, i),
                                                       triangular)
        self._flat("age_s")[i] = 0.0

    def _wear_one(self, i: int):
        if (self.set_pulses.reshape(-1)[i] + self.reset_pulses.reshape(-1)[i] >= self.params.endurance_cycles
                and self.stuck.reshape(-1)[i] == Stuck.NONE):
            mid = 0.5 * (self.params.g_min_us + self.params.g_max_us)
            self._flat("stuck")[i] = Stuck.HIGH if self.g_us.reshape(-1)[i] >= mid else Stuck.LOW

    def set_one(self, row: int, column: int, v_bl: float, v_wl: float, waveform=(1.0,), dt_s: float = 1e-7):
        """`set_pulse` on one cell."""
        p = self.params
        dt_s = _check_seconds("dt_s", dt_s, zero=False)
        i = self._one(row, column)
        v_bl, v_wl = float(_check_voltage("v_bl", v_bl, p)), float(_check_voltage("v_wl", v_wl, p))
        samples = self._samples(waveform)
        if not self._responds(i):
            return
        g_now = float(self.g_us.reshape(-1)[i])
        g_cc = float(_compliance_jittered(p, v_wl, float(self.v_t.reshape(-1)[i]),
                                          self.noise.draw_one(Stream.SET_COMPLIANCE, i)))
        v_set = _set_threshold(p, float(self.v_set.reshape(-1)[i]), self.noise.draw_one(Stream.SET_THRESHOLD, i))
        if g_cc > g_now:
            new_g = g_cc - (g_cc - g_now) * float(_set_remaining(p, v_bl, v_set, samples, dt_s))
            self._flat("g_us")[i] = new_g
            if abs(new_g - g_now) > 1e-9:
                self._programmed_one(i, triangular=len(samples) > 1 and samples[0] < max(samples))
        self._flat("set_pulses")[i] += 1
        self._wear_one(i)

    def reset_one(self, row: int, column: int, v_sl: float, v_wl: float, waveform=(1.0,), dt_s: float = 1e-7):
        """`reset_pulse` on one cell."""
        p = self.params
        dt_s = _check_seconds("dt_s", dt_s, zero=False)
        i = self._one(row, column)
        v_sl = float(_check_voltage("v_sl", v_sl, p))
        _check_voltage("v_wl", v_wl, p)
        peak = v_sl * max(self._samples(waveform))
        if not self._responds(i):
            return
        overdrive = max(peak - p.v_reset, 0.0)
        g_now = float(self.g_us.reshape(-1)[i])
        after = float(_reset_result(p, g_now, overdrive, self.noise.draw_one(Stream.RESET, i)))
        if overdrive > 0:
            self._flat("g_us")[i] = after
        self._flat("reset_pulses")[i] += 1
        if overdrive > 0:
            self._programmed_one(i, triangular=False)
        self._wear_one(i)

    def form_one(self, row: int, column: int, v_bl: float, v_wl: float, waveform=(1.0,), dt_s: float = 1e-6) -> bool:
        """`form` on one cell; True if it formed."""
        p = self.params
        dt_s = _check_seconds("dt_s", dt_s, zero=False)
        i = self._one(row, column)
        v_bl, v_wl = float(_check_voltage("v_bl", v_bl, p)), float(_check_voltage("v_wl", v_wl, p))
        peak = v_bl * max(self._samples(waveform))
        if self.stuck.reshape(-1)[i] != Stuck.NONE or self.formed.reshape(-1)[i]:
            return False
        formed = peak >= self.v_form.reshape(-1)[i]
        g_new = float(_compliance_jittered(p, v_wl, float(self.v_t.reshape(-1)[i]), self.noise.draw_one(Stream.FORM, i)))
        if formed:
            self._flat("g_us")[i] = g_new
            self._flat("formed")[i] = True
        self._flat("set_pulses")[i] += 1
        if formed:
            self._programmed_one(i, triangular=False)
        self._wear_one(i)
        return bool(formed)

    def read_one(self, v_read: float, row: int, column: int) -> float:
        """`read_cells` of one cell."""
        p = self.params
        i = self._one(row, column)
        v_read = float(_check_voltage("v_read", v_read, p))
        g = self._flat("g_us")
        if v_read > p.v_read_disturb and self._responds(i):
            g[i] = _disturbed(p, float(g[i]), v_read)
        return float(_read_value(p, float(g[i]), self.noise.draw_one(Stream.READ, i)))


def _pick(value: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A per-selected-cell voltage (1-D) narrowed to the cells `keep` keeps; a scalar passes through."""
    value = np.asarray(value)
    return value if value.ndim == 0 else value[keep]


def _pick_rows(samples: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A waveform narrowed like `_pick`: a shared 1-D waveform passes, a cells x samples one loses rows."""
    if samples.ndim == 1:
        return samples
    if samples.shape[0] != keep.shape[0]:
        raise ModelInputError(f"per-cell waveform has {samples.shape[0]} rows for {keep.shape[0]} selected cells")
    return samples[keep]
