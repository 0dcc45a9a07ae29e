"""xpnet.book_pickle: the book's weight pickles load; anything that would run code is refused
before it runs."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from xpnet.book_pickle import UnsafePickleError, load_book_params

from .helpers import book_path

BOOK_FILES = {
    "ch07/params.pkl": {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                        "W3": (100, 10), "b3": (10,)},
    "ch08/deep_convnet_params.pkl": {"W1": (16, 1, 3, 3), "W6": (64, 64, 3, 3),
                                     "W7": (1024, 50), "b8": (10,)},
}


@pytest.mark.parametrize("name", list(BOOK_FILES))
def test_the_books_files_load(name):
    path = book_path(name)
    params = load_book_params(path)
    for key, shape in BOOK_FILES[name].items():
        assert params[key].shape == shape
        assert params[key].dtype == np.float64
    with open(path, "rb") as f:  # the file is the book's own: compare with a plain load
        plain = pickle.load(f)
    assert params.keys() == plain.keys()
    for key in plain:
        np.testing.assert_array_equal(params[key], plain[key])


def _book_like(rng):
    return {"W1": rng.standard_normal((3, 1, 2, 2)), "b1": np.zeros(3),
            "W2": rng.standard_normal((4, 2)).astype(np.float32),
            "f": np.asfortranarray(rng.standard_normal((3, 2))),
            "t": np.arange(5, dtype=np.uint8), "big": np.arange(4, dtype=">f8"),
            "s": np.array(2.5)}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("how", ["dumps", "dump-file"])
def test_round_trip_of_book_style_pickles(tmp_path, rng, protocol, how):
    params = _book_like(rng)
    if how == "dumps":
        source = pickle.dumps(params, protocol=protocol)
    else:  # as the book's save_params writes: pickle.dump(params, f) into a file
        source = tmp_path / "params.pkl"
        with open(source, "wb") as f:
            pickle.dump(params, f, protocol=protocol)
    got = load_book_params(source)
    # Our own bytes: a plain load is the reference (NumPy itself drops a '>f8' byte order
    # below protocol 5, values stay).
    data = source if how == "dumps" else source.read_bytes()
    plain = pickle.loads(data)
    assert list(got) == list(params)
    for key, value in params.items():
        assert got[key].dtype == plain[key].dtype
        np.testing.assert_array_equal(got[key], value)


def test_ordered_dict_is_accepted(rng):
    params = collections.OrderedDict(W1=rng.standard_normal((2, 2)))
    got = load_book_params(pickle.dumps(params, protocol=2))
    np.testing.assert_array_equal(got["W1"], params["W1"])


class _Payload:
    """Unpickling this would call ``func(*args)``: the classic pickle exploit."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path):
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, (cmd,)),
        "builtins.eval": _Payload(eval, (code,)),
        "builtins.exec": _Payload(exec, (code,)),
        "subprocess.call": _Payload(subprocess.call, (["touch", str(marker)],)),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec",
                                  "subprocess.call"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_code_payload_is_refused_and_never_runs(tmp_path, rng, kind, protocol):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[kind]
    # Hidden among real arrays, as a tampered params.pkl would carry it.
    data = pickle.dumps({"W1": rng.standard_normal((2, 2)), "b1": payload}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refusing to load .*only NumPy arrays") as err:
        load_book_params(data)
    _module, _, name = kind.rpartition(".")
    assert name in str(err.value)
    assert not marker.exists(), "the payload ran"
    # The same bytes really are an exploit: a plain pickle.loads runs them.
    if kind == "os.system":
        pickle.loads(data)
        assert marker.exists()


def test_malicious_file_on_disk_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({"W1": _Payload(os.system, (f"touch {marker}",))}))
    with pytest.raises(UnsafePickleError, match=r"params\.pkl.*wants to run (posix|nt)\.system"):
        load_book_params(path)
    assert not marker.exists()


def test_non_array_contents_are_refused(rng):
    with pytest.raises(ValueError, match="expected a dict"):
        load_book_params(pickle.dumps([rng.standard_normal(2)]))
    with pytest.raises(ValueError, match=r"expected str -> numpy\.ndarray"):
        load_book_params(pickle.dumps({"W1": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="numeric dtype"):
        load_book_params(pickle.dumps({"W1": np.array(["a", "b"], dtype=object)}))
    with pytest.raises(ValueError, match="not a readable parameter pickle"):
        load_book_params(b"not a pickle at all")


def test_protocol2_bytes_helper_only_encodes_latin1():
    # Protocol 2 pickles rebuild bytes with _codecs.encode(text, 'latin1'); other codecs refused.
    crafted = (b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13"
               b"\x86R.")
    with pytest.raises(UnsafePickleError, match=r"encoding 'rot13'"):
        load_book_params(crafted)
