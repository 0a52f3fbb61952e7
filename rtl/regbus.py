"""The byte-wide register bus between the SPI target and the generated register decoder.

The SPI target is the initiator. One transfer per SPI byte:

* a read is fetched first (``r_stb`` with ``addr``; ``r_data`` is valid the next cycle) and has no side
  effect; when the byte has really been shifted out to the host, ``r_commit`` pulses with ``commit_addr``
  so that registers whose read has a side effect (a FIFO pop) act only on bytes the host received;
* a write (``w_stb`` with ``addr`` and ``w_data``) happens once its whole byte has been received.

``addr_ok`` and ``addr_writable`` answer combinationally for ``addr``, so the target can reject a byte
before it touches anything.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ADDRESS_BITS

__all__ = ["RegisterBus", "WindowPort", "ADDRESS_BITS"]

DATA_BITS = 8


def _transfer_members(addr_bits: int) -> dict:
    """Fetch, commit and write: what the bus and every window port carry."""
    return {
        "addr":        Out(addr_bits),
        "r_stb":       Out(1),
        "r_data":      In(DATA_BITS),
        "r_commit":    Out(1),
        "commit_addr": Out(addr_bits),
        "w_stb":       Out(1),
        "w_data":      Out(DATA_BITS),
    }


class RegisterBus(wiring.Signature):
    """Initiator's view (the SPI target holds ``Out(RegisterBus())``)."""

    def __init__(self, addr_bits: int = ADDRESS_BITS):
        super().__init__({
            **_transfer_members(addr_bits),
            "addr_ok":       In(1),
            "addr_writable": In(1),
        })


class WindowPort(wiring.Signature):
    """What the decoder forwards to an external register or memory window, offsets relative to its base.

    The decoder holds ``Out(WindowPort(...))``; the memory or FIFO behind it holds the flipped side.
    ``r_data`` must be valid the cycle after ``r_stb`` (a synchronous memory read port fits as is).
    """

    def __init__(self, addr_bits: int):
        super().__init__(_transfer_members(addr_bits))
