"""MVMs and neuron trims over the register map: what `Chip.mvm` and `Chip.set_trims` do on a transport that
moves SPI frames (co-simulation, the FPGA build, a board). docs/mvm.md describes the registers and
windows; docs/driver.md the frames.

One MVM: the inputs written to `mvm_x` as 16-bit little-endian entries, the MVM registers that differ
from the last MVM's written (mode, bits, core, read code, threshold), `CTRL.mvm_start`, the status polled
until `mvm_done`, the outputs read from `mvm_y`. Decide mode's state: the biases written to `mvm_bias`, the
LFSR seeds to `mvm_lfsr` (whose stepped states read back from there), K and M to `mvm_noise`.
"""

from __future__ import annotations

import numpy as np

from ..config import ChipConfig
from ..models.macro import check_trims
from ..models.mvm import inputs, outputs, phases
from ..protocol import Conversion, Direction, StatusBit
from .registers import ChipError, RegisterClient, check_identity

__all__ = ["MVMRunner", "MVM_COUNTERS", "mvm_cycles_bound"]

#: The MVM counters (MVM registers) of the last run, as `Chip.mvm_counters()` names them.
MVM_COUNTERS = ("mvm_cycles", "mvm_samples", "mvm_steps")
#: The wire format of an input or output entry: 16-bit little-endian two's complement.
ENTRY = np.dtype("<i2")
ENTRY_BYTES = ENTRY.itemsize
#: A generous bound on the cycles one port handshake takes (strobe, the macro's latency, acknowledge):
#: the emulated macro needs ~2 x (lines + 16) cycles per neuron for an integration (docs/fpga.md).
HANDSHAKE_CYCLES = 64
#: Cycles the sequencer spends per input line and sample (fetch two bytes, drive), docs/mvm.md.
CYCLES_PER_LINE = 3
#: The most cycles a decide-mode output adds: fetch 6 bytes, K + 1 <= 16 LFSR steps, store 4 bytes.
DECIDE_CYCLES = 1 + 6 + 16 + 4
#: Wire formats of a bias (16-bit little-endian two's complement) and an LFSR state (32-bit little-endian).
BIAS = np.dtype("<i2")
LFSR_STATE = np.dtype("<u4")


def mvm_cycles_bound(config: ChipConfig, direction: Direction, in_bits: int, out_bits: int,
                     conversion: Conversion, decide: bool = False) -> int:
    """Most system cycles one MVM can take, macro answers included: what the host waits before it calls
    the chip stuck."""
    samples = (1 << in_bits) - 1
    steps = out_bits if conversion is Conversion.SAR else (1 << out_bits) - 1
    macro = HANDSHAKE_CYCLES + 2 * (config.rows + config.columns) * config.neurons
    per_phase = (samples * (CYCLES_PER_LINE * inputs(config, direction) + macro) + (steps + 1) * macro
                 + (2 * ENTRY_BYTES + (DECIDE_CYCLES if decide else 0)) * config.neurons)
    return phases(config, direction) * per_phase


class MVMRunner:
    """One MVM or one core's trims over `regs` (a `RegisterClient`); every request is checked by `Chip`
    before it reaches here."""

    def __init__(self, regs: RegisterClient, config: ChipConfig, poll_seconds: float):
        self.regs, self.config, self.poll_seconds = regs, config, poll_seconds
        # The MVM registers as this host last wrote them: only the host writes them, so it rewrites only
        # what changes (an MVM is a handful of frames; a calibration is hundreds of MVMs).
        self._written: dict[str, object] = {}
        self._ran = False

    def _check_build(self, what: str, decide: bool = False) -> None:
        check_identity(self.regs, self.config)
        if not self.config.mvm:
            raise ChipError(f"{what}: the {self.config.name} build has no MVM sequencer or trims "
                            "(ChipConfig.mvm off, GEOMETRY.mvm_lines 0)")
        if decide and not self.config.mvm_decide:
            raise ChipError(f"{what}: the {self.config.name} build has no stochastic neurons "
                            "(ChipConfig.mvm_stochastic off, GEOMETRY.mvm_decide 0)")

    def _write_settings(self, settings: dict) -> None:
        for name, value in settings.items():
            if self._written.get(name) != value:       # a register keeps what the last MVM wrote
                self.regs.write(name, value)
                self._written[name] = value

    def run(self, core: int, x: np.ndarray, direction: Direction, in_bits: int, out_bits: int,
            conversion: Conversion, threshold_code: int, v_read_code: int, decide: bool = False) -> np.ndarray:
        self._check_build("mvm", decide)
        config, regs = self.config, self.regs
        mode = regs.table.register("mvm_mode").pack(direction=int(direction), conversion=int(conversion),
                                                    **({"decide": 1} if decide else {}))
        bits = regs.table.register("mvm_bits").pack(in_bits=in_bits, out_bits=out_bits)
        settings = {"mvm_mode": mode, "mvm_bits": bits, "mvm_core": core, "mvm_v_read": v_read_code,
                    "mvm_threshold": threshold_code}
        try:
            # Errors from the next frame's status byte: the polls carry them anyway.
            with regs.batched():
                regs.write_window("mvm_x", 0, np.asarray(x, dtype=np.int64).astype(ENTRY).tobytes())
                self._write_settings(settings)
                regs.write("ctrl", regs.table.register("ctrl").field("mvm_start").mask)
                bound = mvm_cycles_bound(config, direction, in_bits, out_bits, conversion, decide) / config.sys_clk_hz
                regs.wait_done(StatusBit.MVM_DONE, None, bound, min(self.poll_seconds, bound / 8), what="the MVM")
                count = outputs(config, direction)
                y = np.frombuffer(regs.read_window("mvm_y", 0, count * ENTRY_BYTES), dtype=ENTRY).astype(np.int64)
        except Exception:
            self._written.clear()          # after an error, trust nothing about the registers
            raise
        self._ran = True
        return y

    def counters(self) -> dict[str, int]:
        """The last MVM's counters, read from the chip (they hold until the next start)."""
        if not self._ran:
            return {}
        check_identity(self.regs, self.config)
        return {name: self.regs.read(name) for name in MVM_COUNTERS}

    def set_trims(self, core: int, codes) -> None:
        self._check_build("set_trims")
        codes = check_trims(self.config, codes)
        self.regs.write_window("neuron_trim", core * self.config.neurons, codes.astype(np.int8).tobytes())

    def set_stochastic(self, biases: np.ndarray, seeds: np.ndarray, draws: int, magnitude: int) -> None:
        """Decide mode's biases, LFSR seeds and noise, one bias and seed per output line (checked by `Chip`)."""
        self._check_build("set_stochastic", decide=True)
        regs = self.regs
        try:
            with regs.batched():
                regs.write_window("mvm_bias", 0, np.asarray(biases).astype(BIAS).tobytes())
                regs.write_window("mvm_lfsr", 0, np.asarray(seeds).astype(LFSR_STATE).tobytes())
                self._write_settings({"mvm_noise": regs.table.register("mvm_noise").pack(draws=draws,
                                                                                        magnitude=magnitude)})
        except Exception:
            self._written.clear()
            raise

    def lfsr_states(self) -> np.ndarray:
        """Each output line's LFSR state, as the last decide MVM left it (or as seeded)."""
        self._check_build("lfsr_states", decide=True)
        raw = self.regs.read_window("mvm_lfsr", 0, self.config.mvm_lines * LFSR_STATE.itemsize)
        return np.frombuffer(raw, dtype=LFSR_STATE).astype(np.uint64)
