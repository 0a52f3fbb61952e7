"""The demo's `--network` file: whatever the file holds, a valid network loads and anything else is one
`NetworkFileError` saying what was wrong, found before a large array or a zip bomb is unpacked."""

import dataclasses
import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rram_cim.config import REFERENCE
from rram_cim.host.training import (STEPS_MAX, NetworkFileError, TrainedNetwork, TrainSettings, load_networks,
                                    save_networks)

LEVEL_US = np.arange(1, 9) * 10.0
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def pair(hidden: int = 4, seed: int = 0) -> tuple[TrainedNetwork, TrainedNetwork]:
    """A float network and its quantized copy, as training leaves them (no training needed here)."""
    rng = np.random.default_rng(seed)
    sizes = [(64, hidden), (64, 10)]
    floating = TrainedNetwork([rng.uniform(0, 7, s) for s in sizes], [rng.uniform(0, 7, s) for s in sizes],
                              LEVEL_US, TrainSettings(hidden=hidden), 0.5, 64, [1.0, 0.5])
    return floating, floating.quantized()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, np.ndarray]:
    path = tmp_path_factory.mktemp("network") / "net.npz"
    save_networks(path, *pair())
    with np.load(path) as data:
        return dict(data)


def written(path, arrays: dict) -> str:
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return str(path)


def changed(saved, path, **changes) -> str:
    return written(path, {**saved, **changes})


def settings_with(saved, **changes) -> str:
    return json.dumps({**json.loads(str(saved["settings"])), **changes})


def test_a_saved_network_loads_back_exactly(tmp_path):
    before = pair()
    save_networks(tmp_path / "net.npz", *before)
    after = load_networks(tmp_path / "net.npz", REFERENCE)
    for a, b in zip(before, after):
        assert all(np.array_equal(x, y) for x, y in zip(a.plus + a.minus, b.plus + b.minus))
        assert (a.settings, a.gain, a.inputs, a.history) == (b.settings, b.gain, b.inputs, b.history)
    assert after[1].plus[0].dtype == np.int64 and after[0].plus[0].dtype == float


@pytest.mark.parametrize("make, message", [
    (lambda saved, p: (p.write_bytes(b""), p)[1], "the file is empty"),
    (lambda saved, p: (p.write_text("levels: 1 2 3"), p)[1], r"not a readable \.npz archive \(BadZipFile"),
    (lambda saved, p: p.parent / "missing.npz", "cannot read it"),
    (lambda saved, p: p.parent, "IsADirectoryError"),
    (lambda saved, p: changed(saved, p, x=np.zeros(3)), "holds 'x.npy', which is not one of its arrays"),
    (lambda saved, p: changed(saved, p, level_us=None), "lacks the array 'level_us'"),
    (lambda saved, p: changed(saved, p, settings=np.ones(2)), "'settings' has dtype float64; expected text"),
    (lambda saved, p: changed(saved, p, level_us=np.array([1, "a"], dtype=object)), "dtype object"),
    (lambda saved, p: changed(saved, p, quantized_plus_0=saved["quantized_plus_0"] * 1.0),
     "'quantized_plus_0' has dtype float64; expected integers"),
    (lambda saved, p: changed(saved, p, inputs=np.ones(3, dtype=np.int64)), "'inputs' has shape \\(3,\\)"),
    (lambda saved, p: changed(saved, p, float_plus_0=np.zeros((65, 4))), r"shape \(65, 4\); expected 2 dimension"),
    (lambda saved, p: changed(saved, p, layers=3), "3 layers; the chip has 2 cores"),
    (lambda saved, p: changed(saved, p, layers=0), "0 layers"),
])
def test_a_file_that_is_no_network_is_refused_by_what_is_wrong(saved, tmp_path, make, message):
    path = make(saved, tmp_path / "net.npz")
    with pytest.raises(NetworkFileError, match=message) as refused:
        load_networks(path, REFERENCE)
    assert "\n" not in str(refused.value)


def test_a_truncated_file_is_refused(saved, tmp_path):
    whole = open(changed(saved, tmp_path / "net.npz"), "rb").read()
    for cut in (len(whole) // 2, len(whole) - 10, 30):
        (tmp_path / "cut.npz").write_bytes(whole[:cut])
        with pytest.raises(NetworkFileError, match="not a network saved by rram-cim"):
            load_networks(tmp_path / "cut.npz", REFERENCE)


def _nan_at_0(array):
    array = array.copy()
    array[0, 0] = np.nan
    return array


@pytest.mark.parametrize("changes, message", [
    (lambda s: dict(settings=settings_with(s, steps=10 ** 7)), f"setting steps = 10000000 must be a whole number 1..{STEPS_MAX}"),
    (lambda s: dict(settings=settings_with(s, steps=2.5)), "setting steps = 2.5"),
    (lambda s: dict(settings=settings_with(s, hidden=32)), "settings say 32 hidden neurons but layer 0 has 4"),
    (lambda s: dict(settings=settings_with(s, learning_rate=float("nan"))), "learning_rate = nan"),
    (lambda s: dict(settings=settings_with(s, extra=1)), "settings must be a JSON object of exactly"),
    (lambda s: dict(settings="{{{"), "settings are not JSON"),
    (lambda s: dict(float_plus_0=_nan_at_0(s["float_plus_0"])), "float layer 0 has \\+ levels nan..nan; levels are finite"),
    (lambda s: dict(float_minus_1=s["float_minus_1"] + np.inf), "float layer 1 has - levels inf"),
    (lambda s: dict(quantized_plus_1=s["quantized_plus_1"] + 8), "quantized layer 1 has \\+ levels 8..1[0-9]; levels are finite numbers 0..7"),
    (lambda s: dict(quantized_minus_0=s["quantized_minus_0"][:, :3]), "quantized layer 0: \\+ levels \\(64, 4\\) and - levels \\(64, 3\\)"),
    (lambda s: dict(float_plus_1=s["float_plus_1"][:3], float_minus_1=s["float_minus_1"][:3]),
     "float layer 1 has shape \\(3, 10\\); it takes 4 inputs"),
    (lambda s: dict(level_us=s["level_us"][::-1].copy()), "must be at least two finite, positive, increasing"),
    (lambda s: dict(level_us=s["level_us"] * np.nan), "must be at least two finite"),
    (lambda s: dict(gain=np.float64(np.inf)), "gain inf must be a finite positive number"),
    (lambda s: dict(inputs=np.int64(65)), "65 inputs: a core has 1..64 rows"),
    (lambda s: dict(float_history=np.array([1.0, np.nan])), "loss history holds NaN"),
])
def test_a_network_the_chip_cannot_run_is_refused_with_the_reason(saved, tmp_path, changes, message):
    with pytest.raises(NetworkFileError, match=message):
        load_networks(changed(saved, tmp_path / "net.npz", **changes(saved)), REFERENCE)


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_inflates(saved, tmp_path):
    # 400 MB of zeros deflate to ~400 KB: the central directory's size gives it away.
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in saved.items():
            if name != "float_history":
                archive.writestr(f"{name}.npy", _npy(value))
        with archive.open("float_history.npy", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(400):
                member.write(chunk)
    tracemalloc.start()
    try:
        with pytest.raises(NetworkFileError, match="'float_history' unpacks to 419,430,400 bytes"):
            load_networks(path, REFERENCE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_a_header_claiming_a_huge_array_is_refused_before_allocating(saved, tmp_path):
    # A few hundred bytes whose header asks for 10^6 x 10^6 floats (8 TB).
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in saved.items():
            archive.writestr(f"{name}.npy", header.getvalue() if name == "float_plus_0" else _npy(value))
    with pytest.raises(NetworkFileError, match=r"'float_plus_0' has shape \(1000000, 1000000\)"):
        load_networks(path, REFERENCE)


def test_the_default_bound_is_the_largest_config(saved, tmp_path):
    """Without a config the loader takes any network some config holds (the demo passes none)."""
    path = changed(saved, tmp_path / "net.npz", layers=3)
    with pytest.raises(NetworkFileError, match="lacks the array 'float_(plus|minus)_2'"):
        load_networks(path)                               # the neurram chip has 48 cores
    with pytest.raises(NetworkFileError, match="49 layers; the chip has 48 cores"):
        load_networks(changed(saved, tmp_path / "net.npz", layers=49))


# ---- property tests: any file either loads into a valid network or raises NetworkFileError -------------
def _check_valid(networks):
    floating, quantized = networks
    top = len(quantized.level_us) - 1
    for network in networks:
        for levels in network.plus + network.minus:
            assert np.all(np.isfinite(levels)) and levels.min() >= 0 and levels.max() <= top
    assert all(np.issubdtype(levels.dtype, np.integer) for levels in quantized.plus + quantized.minus)
    assert 1 <= quantized.settings.steps <= STEPS_MAX
    assert [p.shape for p in floating.plus] == [p.shape for p in quantized.plus]


def _load_or_refuse(path):
    try:
        networks = load_networks(path, REFERENCE)
    except NetworkFileError as error:
        assert str(error) and "\n" not in str(error)
        return None
    _check_valid(networks)
    return networks


@PROPERTY
@given(data=st.binary(max_size=2000))
def test_random_bytes_are_refused(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    assert _load_or_refuse(path) is None


@PROPERTY
@given(data=st.data())
def test_corrupting_bytes_of_a_saved_file_never_escapes_as_another_error(saved, tmp_path, data):
    whole = bytearray(open(changed(saved, tmp_path / "net.npz"), "rb").read())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(whole) - 1))
        whole[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(whole)))
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(whole[:cut]))
    _load_or_refuse(path)


_dtypes = st.one_of(hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
                    hnp.boolean_dtypes(), hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=4))


@PROPERTY
@given(data=st.data())
def test_any_member_replaced_by_any_array_loads_validly_or_is_refused(saved, tmp_path, data):
    name = data.draw(st.sampled_from(sorted(saved)))
    if data.draw(st.booleans()):
        # Same shape, other values (NaN, out-of-table levels, other integers): the content checks.
        original = saved[name]
        value = data.draw(hnp.arrays(original.dtype, original.shape,
                                     elements=st.floats(-2, 10) if original.dtype.kind == "f"
                                     else st.integers(-2, 10) if original.dtype.kind in "iu" else None))
        if original.dtype.kind == "f" and value.size:
            value.flat[data.draw(st.integers(0, value.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, 3.5]))
    else:
        value = data.draw(hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, max_side=70)))
    _load_or_refuse(changed(saved, tmp_path / "net.npz", **{name: value}))


@PROPERTY
@given(changes=st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(TrainSettings)]),
                               st.one_of(st.integers(-10, 10 ** 8), st.floats(allow_nan=True), st.none(),
                                         st.text(max_size=5), st.booleans()), max_size=3))
def test_any_settings_load_validly_or_are_refused(saved, tmp_path, changes):
    _load_or_refuse(changed(saved, tmp_path / "net.npz", settings=settings_with(saved, **changes)))
