"""Pulse waveforms as DAC code sequences: one code per system clock cycle.

The RTL row/column drivers step the DAC through exactly these codes, so the model and the chip apply the
same waveform. Square: the amplitude for every cycle. Triangular: a linear ramp up to the amplitude at
the middle cycle and back down, code_k = floor(amplitude * min(k + 1, width - k) / ceil(width / 2)).
"""

from __future__ import annotations

import numpy as np

from .device import ModelInputError, Shape

__all__ = ["pulse_codes", "relative_waveform", "relative_codes"]


def pulse_codes(amplitude_code: int, width_cycles: int, shape: Shape = Shape.SQUARE) -> np.ndarray:
    if width_cycles < 1:
        raise ModelInputError(f"pulse width {width_cycles} cycles: must be at least 1")
    if amplitude_code < 0:
        raise ModelInputError(f"pulse amplitude code {amplitude_code} is negative")
    if shape is Shape.SQUARE:
        return np.full(width_cycles, amplitude_code, dtype=np.int64)
    k = np.arange(width_cycles)
    half = (width_cycles + 1) // 2
    return (amplitude_code * np.minimum(k + 1, width_cycles - k)) // half


def relative_waveform(width_cycles: int, shape: Shape) -> np.ndarray:
    """The waveform as fractions of the amplitude (what `ReRAMArray` pulses take)."""
    if shape is Shape.SQUARE:
        return np.ones(width_cycles)
    k = np.arange(width_cycles)
    half = (width_cycles + 1) // 2
    return np.minimum(k + 1, width_cycles - k) / half


def relative_codes(amplitude_codes: np.ndarray, width_cycles: int, shape: Shape) -> np.ndarray:
    """Per-cell waveforms (cells x cycles) as the analog macro sees them: each cell's DAC codes divided
    by its amplitude code (the flooring of `pulse_codes` included; zeros for a zero amplitude)."""
    amplitude = np.asarray(amplitude_codes, dtype=np.int64).reshape(-1)
    k = np.arange(width_cycles)
    if shape is Shape.SQUARE:
        multiplier, half = np.ones(width_cycles, dtype=np.int64), 1
    else:
        multiplier, half = np.minimum(k + 1, width_cycles - k), (width_cycles + 1) // 2
    codes = (amplitude[:, None] * multiplier[None, :]) // half
    scale = np.where(amplitude > 0, amplitude, 1).astype(float)[:, None]
    return codes.astype(float) / scale
