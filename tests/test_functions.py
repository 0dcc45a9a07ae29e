"""xpnet.functions: activations, softmax, log-softmax, cross-entropy, one-hot, label checks.

References are computed here on the host with NumPy in float64 by other formulas than the code's.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import functions as F

LABEL_DTYPES = ["uint8", "int8", "int16", "int32", "int64"]


def _softmax_ref(x: np.ndarray) -> np.ndarray:
    # exp(x - logsumexp(x)) with logsumexp by np.logaddexp.reduce: no max-shift as in the code
    return np.exp(x - np.logaddexp.reduce(x, axis=-1, keepdims=True))


def _ce_ref(x: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of logits x (N, C) and integer labels t (N,)."""
    logp = x - np.logaddexp.reduce(x, axis=-1, keepdims=True)
    return float(-np.mean([logp[i, k] for i, k in enumerate(t)]))


# --------------------------------------------------------------------------- sigmoid


def test_sigmoid_values(xp, rng):
    host = np.concatenate([rng.standard_normal(8) * 5, [0.0, -30.0, 30.0, -700.0]])
    want = np.exp(-np.logaddexp(0.0, -host))  # 1 / (1 + e^-x), by another formula
    xp.assert_close(F.sigmoid(xp.asarray(host)), want, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_no_overflow_at_extremes(xp, dtype):
    # filterwarnings=error turns any overflow RuntimeWarning into a failure
    y = F.sigmoid(xp.asarray([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype))
    xp.assert_on(y, dtype, (5,))
    got = xp.to_numpy(y)
    assert np.all(np.isfinite(got))
    assert got[0] == 0.0
    assert got[2] == 0.5
    assert got[4] == 1.0
    assert got[3] == 1.0
    assert 0.0 <= got[1] < 1e-40  # exp(-100) = 3.7e-44
    if dtype == "float64":
        np.testing.assert_allclose(got[1], np.exp(-100.0), rtol=1e-12)


def test_sigmoid_0d(xp):
    xp.assert_close(F.sigmoid(xp.asarray(0.0)), 0.5)


def test_relu_values(xp):
    x = xp.asarray([-2.0, -0.0, 0.0, 0.5, 3.0])
    xp.assert_close(F.relu(x), [0.0, 0.0, 0.0, 0.5, 3.0])


# --------------------------------------------------------------------------- softmax


def test_softmax_matches_reference_and_sums_to_one(xp, rng):
    host = rng.standard_normal((4, 5)) * 3
    y = F.softmax(xp.asarray(host))
    xp.assert_close(y, _softmax_ref(host), rtol=1e-13)
    xp.assert_close(xp.sum(y, axis=-1), np.ones(4), rtol=1e-14)


def test_softmax_axis(xp, rng):
    host = rng.standard_normal((3, 2))
    y = F.softmax(xp.asarray(host), axis=0)
    xp.assert_close(y, _softmax_ref(host.T).T, rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_log_softmax_stable_for_large_logits(xp, dtype):
    host = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0], [0.0, 1.0, 2.0]])
    y = xp.to_numpy(F.softmax(xp.asarray(host, dtype)))
    logp = xp.to_numpy(F.log_softmax(xp.asarray(host, dtype)))
    assert np.all(np.isfinite(y))
    assert np.all(np.isfinite(logp))
    rtol = 1e-6 if dtype == "float32" else 1e-13
    small = _softmax_ref(np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(y, [small, small[::-1], small], rtol=rtol)
    np.testing.assert_allclose(logp, np.log([small, small[::-1], small]), rtol=rtol)


def test_log_softmax_far_apart_logits(xp):
    # softmax underflows to 0 for the second class; its log must not be -inf
    logp = F.log_softmax(xp.asarray([1000.0, 0.0]))
    xp.assert_close(logp, [0.0, -1000.0], rtol=1e-14)


def test_softmax_single_sample(xp, rng):
    host = rng.standard_normal(6)
    xp.assert_close(F.softmax(xp.asarray(host)), _softmax_ref(host), rtol=1e-13)


# --------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_cross_entropy_one_hot_and_integer_labels_agree(xp, rng, label_dtype):
    host = rng.standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 1, 1, 2])
    x = xp.asarray(host)
    t_int = xp.asarray(labels, label_dtype)
    t_hot = xp.asarray(np.eye(4)[labels])
    want = _ce_ref(host, labels)
    for loss in (F.softmax_cross_entropy(x, t_int), F.softmax_cross_entropy(x, t_hot),
                 F.cross_entropy_error(F.softmax(x), t_int),
                 F.cross_entropy_error(F.softmax(x), t_hot)):
        xp.assert_on(loss, "float64", ())
        xp.assert_close(loss, want, rtol=1e-13)


def test_cross_entropy_with_soft_labels(xp, rng):
    host = rng.standard_normal((3, 4))
    soft = rng.random((3, 4))
    soft /= soft.sum(axis=1, keepdims=True)
    want = -np.mean(np.sum(soft * np.log(_softmax_ref(host)), axis=1))
    xp.assert_close(F.softmax_cross_entropy(xp.asarray(host), xp.asarray(soft)), want, rtol=1e-13)


def test_cross_entropy_single_sample(xp, rng):
    host = rng.standard_normal(5)
    want = _ce_ref(host[None, :], np.array([2]))
    x = xp.asarray(host)
    for t in (xp.asarray(2, "int64"), xp.asarray(2, "uint8"), xp.asarray(np.eye(5)[2])):
        xp.assert_close(F.softmax_cross_entropy(x, t), want, rtol=1e-13)
        xp.assert_close(F.cross_entropy_error(F.softmax(x), t), want, rtol=1e-13)


def test_cross_entropy_error_of_a_zero_probability_is_finite(xp):
    y = xp.asarray([[1.0, 0.0]])
    loss = xp.to_numpy(F.cross_entropy_error(y, xp.asarray([1], "int64")))
    assert np.isfinite(loss)
    assert loss > 700  # -log(smallest normal float64) = 708.4


def test_cross_entropy_float32(xp, rng):
    host = rng.standard_normal((4, 3))
    labels = np.array([2, 0, 1, 2])
    x = xp.asarray(host, "float32")
    for t in (xp.asarray(labels, "uint8"), xp.asarray(np.eye(3)[labels], "float32"),
              xp.asarray(np.eye(3)[labels], "float64")):
        loss = F.softmax_cross_entropy(x, t)
        xp.assert_on(loss, "float32", ())
        xp.assert_close(loss, _ce_ref(host.astype(np.float32), labels), rtol=1e-6)
        xp.assert_on(F.cross_entropy_error(F.softmax(x), t), "float32", ())


# --------------------------------------------------------------------------- one-hot and labels


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_one_hot(xp, label_dtype):
    hot = F.one_hot(xp.asarray([2, 0, 1], label_dtype), 4, dtype=xp.float32)
    xp.assert_on(hot, "float32", (3, 4))
    xp.assert_close(hot, np.eye(4)[[2, 0, 1]])


def test_one_hot_default_dtype_is_float64(xp):
    hot = F.one_hot(xp.asarray([1], "int64"), 2)
    xp.assert_on(hot, "float64", (1, 2))


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_check_labels_accepts_labels_in_range(xp, label_dtype):
    F.check_labels(xp.asarray([0, 9, 3], label_dtype), 10)
    F.check_labels(xp.asarray(np.zeros(0), label_dtype), 10)


@pytest.mark.parametrize(
    ("labels", "dtype", "low", "high"),
    [([0, 3, 1], "uint8", 0, 3), ([0, -1, 2], "int8", -1, 2), ([255, 0], "uint8", 0, 255),
     ([10], "int64", 10, 10)],
)
def test_check_labels_out_of_range_names_the_range(xp, labels, dtype, low, high):
    with pytest.raises(ValueError, match=rf"labels must lie in \[0, 3\) for 3 classes, "
                                         rf"got values from {low} to {high}"):
        F.check_labels(xp.asarray(labels, dtype), 3)


def test_check_labels_ignores_one_hot(xp):
    F.check_labels(xp.asarray(np.eye(3)), 3)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.cross_entropy_error])
def test_wrong_integer_label_shape(xp, fn):
    x = xp.asarray(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"class indices must have shape \(4,\) for scores of "
                                         r"shape \(4, 3\), got shape \(3,\)"):
        fn(x, xp.asarray([0, 1, 2], "int64"))
    with pytest.raises(ValueError, match=r"must have shape \(4,\).*got shape \(4, 2\)"):
        fn(x, xp.asarray(np.zeros((4, 2)), "int64"))
    # A column of indices (4, 1) is taken as (4,): the book's ch07/gradient_check.py passes one.
    xp.assert_close(fn(x, xp.asarray(np.zeros((4, 1)), "int64")),
                    xp.to_numpy(fn(x, xp.asarray(np.zeros(4), "int64"))), rtol=0)


@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.cross_entropy_error])
def test_column_labels_at_one_and_two_classes(xp, rng, fn):
    """The `y.shape[-1] > 1` boundary of the column-of-indices rule: with two classes a column
    (N, 1) is still class indices (guards `> 1` against `> 2`); with one class it is refused
    as the wrong shape, not silently taken as indices (guards `> 1` against `>= 1`)."""
    y2 = xp.asarray(rng.random((3, 2)) + 0.1)
    labels = np.array([1, 0, 1])
    xp.assert_close(fn(y2, xp.asarray(labels[:, None], "int64")),
                    xp.to_numpy(fn(y2, xp.asarray(labels, "int64"))), rtol=0)
    y1 = xp.asarray(np.full((3, 1), 0.5))
    with pytest.raises(ValueError, match=r"class indices must have shape \(3,\) for scores of "
                                         r"shape \(3, 1\), got shape \(3, 1\)"):
        fn(y1, xp.asarray(np.zeros((3, 1)), "int64"))


@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.cross_entropy_error])
def test_float_labels_with_wrong_shape(xp, fn):
    x = xp.asarray(np.zeros((4, 3)))
    # One float per row: class indices of the wrong dtype, not wrong one-hot rows (issue 17).
    with pytest.raises(TypeError, match=r"labels of shape \(4,\) and dtype .*float64 look like "
                                        r"class indices, which must be integers: cast them"):
        fn(x, xp.asarray([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"one-hot labels must have shape \(4, 3\) for scores of "
                                         r"shape \(4, 3\), got shape \(4, 2\)"):
        fn(x, xp.asarray(np.zeros((4, 2))))


@pytest.mark.parametrize("fn", [F.softmax_cross_entropy, F.cross_entropy_error])
def test_bool_labels_are_refused(xp, fn):
    with pytest.raises(TypeError, match="labels have dtype bool; pass class indices"):
        fn(xp.asarray(np.zeros((2, 2))), xp.asarray(np.eye(2, dtype=bool)))


@pytest.mark.parametrize("shape", [(), (2, 3, 4)])
def test_scores_of_wrong_rank(xp, shape):
    with pytest.raises(ValueError, match=r"scores must have shape \(N, C\) or \(C,\), got shape"):
        F.softmax_cross_entropy(xp.asarray(np.zeros(shape)), xp.asarray(np.zeros(shape)))


# --------------------------------------------------------------------------- dtype and device


def test_float32_in_float32_out_on_the_device(xp, rng):
    x = xp.asarray(rng.standard_normal((3, 4)), "float32")
    for fn in (F.sigmoid, F.relu, F.softmax, F.log_softmax):
        xp.assert_on(fn(x), "float32", (3, 4))
    t = xp.asarray([0, 3, 1], "uint8")
    xp.assert_on(F.one_hot(t, 4, dtype=xp.float32), "float32", (3, 4))
    xp.assert_on(F.softmax_cross_entropy(x, t), "float32", ())
    xp.assert_on(F.cross_entropy_error(F.softmax(x), t), "float32", ())


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64"])
def test_one_hot_with_more_classes_than_the_label_dtype_counts(xp, dtype):
    """uint8 labels, 300 classes: the class range must not wrap around in the labels' dtype."""
    from xpnet.functions import one_hot

    labels = np.array([0, 7, 255, 3], dtype=dtype)
    hot = one_hot(xp.asarray(labels), 300, dtype=xp.float32)
    expected = np.zeros((4, 300), dtype=np.float32)
    expected[np.arange(4), labels.astype(np.int64)] = 1.0
    xp.assert_close(hot, expected, rtol=0)


# --------------------------------------------------------------------------- the book's other names


def test_identity_function_returns_its_input(xp):
    x = xp.asarray([1.0, -2.0])
    assert F.identity_function(x) is x


def test_step_function(xp):
    got = F.step_function(xp.asarray([-1.0, 0.0, 1e-300, 2.0]))
    xp.assert_on(got, "int64", (4,))
    np.testing.assert_array_equal(xp.to_numpy(got), [0, 0, 1, 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_grad_against_a_central_difference(xp, rng, dtype):
    host = rng.standard_normal(10) * 3
    h = 1e-6
    want = (1 / (1 + np.exp(-(host + h))) - 1 / (1 + np.exp(-(host - h)))) / (2 * h)
    got = F.sigmoid_grad(xp.asarray(host, dtype))
    xp.assert_on(got, dtype, (10,))
    xp.assert_close(got, want, rtol=1e-8 if dtype == "float64" else 1e-5, atol=1e-7)


def test_relu_grad_counts_zero_in_as_the_book(xp):
    got = F.relu_grad(xp.asarray([-1.0, 0.0, 0.5], "float32"))
    xp.assert_on(got, "float32", (3,))
    np.testing.assert_array_equal(xp.to_numpy(got), [0.0, 1.0, 1.0])


def test_mean_squared_error_the_books_example(xp):
    # chapter 4: "2" is the answer; 0.6 on it gives 0.0975, 0.6 on "7" gives 0.5975
    t = xp.asarray([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], "int64")
    y_right = xp.asarray([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    y_wrong = xp.asarray([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
    assert float(F.mean_squared_error(y_right, t)) == pytest.approx(0.0975, rel=1e-12)
    assert float(F.mean_squared_error(y_wrong, t)) == pytest.approx(0.5975, rel=1e-12)
    assert F.sum_squared_error is F.mean_squared_error  # common/functions.py's name


@pytest.mark.parametrize(("yd", "td"), [("float32", "float32"), ("float32", "float64"),
                                        ("float64", "float32")])
def test_mean_squared_error_dtypes_follow_numpy(xp, rng, yd, td):
    yh, th = rng.random((3, 4)).astype(yd), rng.random((3, 4)).astype(td)
    want = 0.5 * np.sum((yh - th) ** 2)
    got = F.mean_squared_error(xp.asarray(yh), xp.asarray(th))
    xp.assert_on(got, want.dtype.name, ())
    xp.assert_close(got, want, rtol=1e-6 if want.dtype == np.float32 else 1e-13)
    with pytest.raises(ValueError, match=r"same shape, got \(3, 4\) and \(4,\)"):
        F.mean_squared_error(xp.asarray(yh), xp.asarray(th[0]))


@pytest.mark.parametrize("labels_as", ["one-hot", "int64"])
def test_softmax_loss_is_cross_entropy_of_softmax(xp, rng, labels_as):
    xh = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    th = np.eye(4)[labels] if labels_as == "one-hot" else labels
    got = F.softmax_loss(xp.asarray(xh), xp.asarray(th))
    xp.assert_on(got, "float64", ())
    xp.assert_close(got, _ce_ref(xh, labels), rtol=1e-13)
