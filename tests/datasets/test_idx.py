"""xpnet.datasets.idx: writing, reading and parsing IDX files, and the errors that name what is
wrong with one."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.datasets import IDXError, parse_idx, read_idx, write_idx
from xpnet.datasets.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, encode_idx


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("shape", [(7,), (4, 28, 28), (2, 3, 5)])
def test_idx_round_trip(tmp_path, compress, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = write_idx(tmp_path / "file-without-suffix", array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, array)


def test_idx_magic_numbers():
    assert encode_idx(np.zeros(3, np.uint8))[:4] == IDX_LABELS_MAGIC.to_bytes(4, "big")
    assert encode_idx(np.zeros((1, 28, 28), np.uint8))[:4] == IDX_IMAGES_MAGIC.to_bytes(4, "big")


def test_parse_idx_rejects_bad_magic():
    data = b"\x50\x4b\x03\x04" + bytes(20)  # a zip file header
    with pytest.raises(IDXError, match=r"bad\.bin: not an IDX file.*0x504b0304"):
        parse_idx(data, name="bad.bin")


def test_parse_idx_rejects_wrong_dtype_byte():
    data = bytearray(encode_idx(np.zeros(4, np.uint8)))
    data[2] = 0x0D  # float
    with pytest.raises(IDXError, match="dtype byte 0x0d"):
        parse_idx(bytes(data))


def test_parse_idx_rejects_wrong_kind():
    labels = encode_idx(np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match=r"magic number 0x00000801, expected 0x00000803"):
        parse_idx(labels, expect_magic=IDX_IMAGES_MAGIC)


def test_parse_idx_truncated_names_file_and_counts():
    data = encode_idx(np.zeros((3, 28, 28), np.uint8))[:-10]
    with pytest.raises(IDXError) as info:
        parse_idx(data, name="imgs.idx")
    message = str(info.value)
    assert "imgs.idx" in message
    assert "truncated" in message
    assert f"need {3 * 28 * 28} data bytes" in message
    assert f"got {3 * 28 * 28 - 10}" in message


def test_parse_idx_truncated_header():
    data = encode_idx(np.zeros((3, 28, 28), np.uint8))[:9]
    with pytest.raises(IDXError, match="truncated IDX header: expected 16 bytes"):
        parse_idx(data)


def test_parse_idx_rejects_trailing_bytes():
    data = encode_idx(np.zeros(4, np.uint8)) + b"\x00"
    with pytest.raises(IDXError, match="too long"):
        parse_idx(data)


def test_parse_idx_rejects_wrong_dimensions():
    data = encode_idx(np.zeros((2, 27, 28), np.uint8))
    with pytest.raises(IDXError, match=r"dimensions \(2, 27, 28\), expected \('any', 28, 28\)"):
        parse_idx(data, expect_shape=(None, 28, 28))
    parse_idx(data, expect_shape=(None, 27, 28))  # the same file is fine when expected
