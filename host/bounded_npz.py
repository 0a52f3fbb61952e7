"""Reading an .npz file whose every member is bounded before a byte of it is decompressed.

`numpy.load` trusts the file: an array header may claim any shape (a 90 KB file can ask for gigabytes),
a zip member may inflate a thousandfold (a zip bomb), object arrays unpickle code, and a truncated or
empty file ends in whichever exception the zip or numpy layer happens to meet. Here the caller says
which members it expects and how large each may be; the central directory's uncompressed sizes and each
member's .npy header (`numpy.lib.format.read_magic`, `read_array_header_*`) are checked against that
before the data is read, and the data read is exactly what the header announced. Any fault is one
`NpzError` saying what was wrong and what was expected; the caller adds which file and what for.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Member", "NpzError", "read_npz", "budget_bytes", "HEADER_MAX_BYTES"]

#: numpy's own default limit on a .npy header (`max_header_size`); a real header is ~128 bytes.
HEADER_MAX_BYTES = 10_000
#: Zip bookkeeping per member (local header, name, data descriptor) and for the central directory.
_ZIP_SLACK_BYTES = 1024

# What the zip and .npy layers raise on a damaged file: truncated, empty, not a zip, an unsupported or
# encrypted compression, a corrupt deflate stream, a header that does not parse.
_FILE_FAULTS = (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
                RuntimeError, ValueError, KeyError, TypeError, SyntaxError, OverflowError)


class NpzError(ValueError):
    """The file is not the .npz archive the caller expects (damaged, other arrays, or too large)."""


def budget_bytes(members) -> int:
    """Largest file that can hold `members` (an iterable of `Member`): their data, headers and zip records."""
    return sum(m.max_bytes + HEADER_MAX_BYTES + _ZIP_SLACK_BYTES for m in members) + _ZIP_SLACK_BYTES


@dataclass(frozen=True)
class Member:
    """What one array may be: dtype kinds (`"f"`, `"iu"`, `"U"`...), and its largest size per dimension
    (its length is the array's number of dimensions)."""
    kinds: str
    max_shape: tuple[int, ...]
    max_itemsize: int = 8

    @property
    def max_bytes(self) -> int:
        return math.prod(self.max_shape) * self.max_itemsize


def read_npz(path, members: dict[str, Member], budget_bytes: int, exact: bool = True) -> dict[str, np.ndarray]:
    """The arrays `members` names (each stored as `name.npy`, as `numpy.savez` writes), every one checked
    against its `Member`; a file over `budget_bytes`, other arrays in it (unless not `exact`), or anything
    wrong with it raises `NpzError`."""
    error = NpzError
    try:
        size = os.stat(path).st_size
    except (OSError, TypeError, ValueError) as fault:
        raise error(f"cannot read it: {fault}") from None
    if size == 0:
        raise error("the file is empty; expected an .npz archive of numpy arrays")
    if size > budget_bytes:
        raise error(f"the file is {size:,} bytes; a file of these arrays is at most {budget_bytes:,}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            expected = {f"{name}.npy": name for name in members}
            unexpected = sorted(set(infos) - set(expected))
            if exact and unexpected:
                raise error(f"it holds {unexpected[0]!r}, which is not one of its arrays")
            missing = sorted(name for stored, name in expected.items() if stored not in infos)
            if missing:
                raise error(f"it lacks the array {missing[0]!r}")
            return {name: _member(archive, infos[stored], members[name])
                    for stored, name in expected.items()}
    except NpzError:
        raise
    except _FILE_FAULTS as fault:
        raise error(f"not a readable .npz archive ({type(fault).__name__}: {fault})") from None


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Member) -> np.ndarray:
    error = NpzError
    name = info.filename[:-len(".npy")]
    # The central directory's uncompressed size bounds what decompressing can produce (zipfile stops
    # there), so a bomb is refused here, before it inflates.
    if info.file_size > member.max_bytes + HEADER_MAX_BYTES:
        raise error(f"array {name!r} unpacks to {info.file_size:,} bytes; it is at most "
                    f"{member.max_bytes + HEADER_MAX_BYTES:,}")
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=HEADER_MAX_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=HEADER_MAX_BYTES)
        else:
            raise error(f"array {name!r} is in .npy format {version}; expected 1.0 or 2.0")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise error(f"array {name!r} has dtype {dtype}; expected plain numbers or text")
        if dtype.kind not in member.kinds or dtype.itemsize > member.max_itemsize:
            raise error(f"array {name!r} has dtype {dtype}; expected {_kinds(member.kinds)} of at most "
                        f"{member.max_itemsize} bytes")
        if len(shape) != len(member.max_shape) or any(n > most for n, most in zip(shape, member.max_shape)):
            bound = "x".join(str(n) for n in member.max_shape) or "a scalar"
            raise error(f"array {name!r} has shape {shape}; expected {len(member.max_shape)} "
                        f"dimension(s) of at most {bound}")
        count = math.prod(shape)
        data = stream.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise error(f"array {name!r} is truncated ({len(data)} of {count * dtype.itemsize} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _kinds(kinds: str) -> str:
    words = {"f": "floats", "i": "integers", "u": "unsigned integers", "U": "text", "b": "booleans"}
    return " or ".join(words.get(kind, kind) for kind in kinds)
