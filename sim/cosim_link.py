"""The co-simulation as a transport of the host's own process: `Chip(CosimTransport("verilator"))`.

The generated Verilog runs in a simulator process under cocotb (`sim/cocotb_serve.py`), the Python analog
macro answering its analog port through the bridge. This side builds the simulator model, starts the
simulation and talks to it over a Unix socket: each SPI frame the host sends is clocked through the
chip's SPI pins and the bytes CIPO carried come back; `idle(seconds)` lets simulated time pass (the host
polling a busy chip); `relax(seconds)` ages the macro's cells (simulation only). The simulation stands
still while the host thinks, as a paused chip would.

Messages both ways: one kind byte, a 4-byte big-endian length, the payload.
"""

from __future__ import annotations

import os
import pathlib
import socket
import struct
import tempfile
import threading

from ..config import REFERENCE, ChipConfig

__all__ = ["CosimTransport", "CosimError", "send_message", "receive_message"]

HEADER = struct.Struct("!cI")
FLOAT = struct.Struct("!d")
#: Requests (host -> simulation) and replies.
EXCHANGE, IDLE, RELAX, TIME, QUIT = b"X", b"I", b"R", b"T", b"Q"
OK, FAILED = b"K", b"E"
#: What each top is built as: the chip with the gateware SPI controller its frames go through
#: (`sim.cosim_chip`), or the FPGA build behind its UART.
BUILT_BLOCK = {"chip": "chip_cosim", "fpga_uart": "fpga_uart"}
#: How long the simulator may take to start and connect (Verilator's model is built before).
CONNECT_SECONDS = 120.0


class CosimError(RuntimeError):
    """The co-simulation did not start or stopped answering."""


def send_message(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(HEADER.pack(kind, len(payload)) + payload)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise CosimError("the co-simulation closed its connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive_message(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, size = HEADER.unpack(_receive_exactly(sock, HEADER.size))
    return kind, _receive_exactly(sock, size)


class CosimTransport:
    """An SPI frame transport into the RTL co-simulation (Icarus or Verilator), for `host.chip.Chip`.

    `seed` draws the macro's devices (the same seed gives the same cells as `ModelTransport(seed=...)`);
    `neuron_noise` turns on the neurons' kT/C noise and comparator offsets. `block="fpga_uart"` runs
    the FPGA build instead (emulated macro, frames through its UART bridge, as on a board). Use as a context manager, or
    call `close()`, which ends the simulation."""

    def __init__(self, simulator: str | None = None, config: ChipConfig = REFERENCE, seed: int = 0,
                 neuron_noise: bool = False, build_dir: str | os.PathLike | None = None, built=None, log=print,
                 block: str = "chip"):
        from .runner import build
        from .toolchain import default_simulator
        self.frames = 0
        self.bytes = 0
        self._scratch = tempfile.TemporaryDirectory(prefix="rram-cim-cosim-")
        if block not in BUILT_BLOCK:
            raise CosimError(f"block {block!r} is not a chip top ({', '.join(BUILT_BLOCK)})")
        if built is None:               # else a `runner.Build` of the chip to reuse
            simulator = simulator or default_simulator()
            root = pathlib.Path(build_dir) if build_dir else pathlib.Path(self._scratch.name)
            log(f"co-simulation: building the {block} for {simulator}...")
            built = build(simulator, root, config, block=BUILT_BLOCK[block])
            log(f"co-simulation: built in {built.seconds:.1f} s")
        elif built.config != config or built.toplevel != f"rram_cim_{BUILT_BLOCK[block]}":
            raise CosimError(f"the build is {built.toplevel} for {built.config.name}, not "
                             f"rram_cim_{BUILT_BLOCK[block]} for {config.name}")
        self.built = built
        self.simulator = built.simulator
        self.config = config
        path = os.path.join(self._scratch.name, "chip.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(CONNECT_SECONDS)
        self._outcome: dict = {}
        env = {"RRAM_CIM_SOCKET": path, "RRAM_CIM_TOP": block, "RRAM_CIM_SEED": str(seed), "RRAM_CIM_NEURON_NOISE": str(int(neuron_noise)),
               "COCOTB_LOG_LEVEL": "WARNING"}
        self._thread = threading.Thread(target=self._simulate, args=(env,), daemon=True)
        self._thread.start()
        try:
            self._sock, _ = listener.accept()
        except socket.timeout:
            raise CosimError(f"the {self.simulator} simulation did not connect within {CONNECT_SECONDS:.0f} s "
                             f"(its log: {self.built.directory})") from None
        finally:
            listener.close()

    def _simulate(self, env):
        from .runner import run
        try:
            self._outcome["result"] = run(self.built, "rram_cim.sim.cocotb_serve", extra_env=env)
        except BaseException as error:                # reported by close()
            self._outcome["error"] = error

    def _request(self, kind: bytes, payload: bytes = b"") -> bytes:
        try:
            send_message(self._sock, kind, payload)
            answer, data = receive_message(self._sock)
        except OSError as error:
            raise CosimError(f"the co-simulation stopped answering: {error}") from error
        if answer != OK:
            raise CosimError(f"the co-simulation failed: {data.decode(errors='replace')}")
        return data

    # ---- FrameTransport -----------------------------------------------------------------------------------
    def exchange(self, frame: bytes) -> bytes:
        self.frames += 1
        self.bytes += len(frame)
        return self._request(EXCHANGE, bytes(frame))

    def idle(self, seconds: float) -> None:
        self._request(IDLE, FLOAT.pack(seconds))

    # ---- simulation only ----------------------------------------------------------------------------------
    def relax(self, seconds: float) -> None:
        """Age every cell of the macro by `seconds` (no clock cycles pass)."""
        self._request(RELAX, FLOAT.pack(seconds))

    def sim_seconds(self) -> float:
        """Simulated time since the chip left reset."""
        return FLOAT.unpack(self._request(TIME))[0]

    def close(self) -> None:
        if self._thread.is_alive():
            try:
                self._request(QUIT)
            except CosimError:
                pass
            self._sock.close()
            self._thread.join()
        self._scratch.cleanup()
        if "error" in self._outcome:
            raise CosimError(f"the co-simulation failed: {self._outcome['error']}")
        tests, failures = self._outcome.get("result", (0, 0))
        if tests != 1 or failures:
            raise CosimError(f"the co-simulation ended badly ({failures} of {tests} failed); log above")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
