"""Sparse (CSR) input through the first layer: the record, its factory and the compiled
forward product and weight gradient, against scipy's ``toarray()`` products."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from numba_dense.kernels import reference as ref
from numba_dense.kernels import sparse as S
from numba_dense.kernels.errors import InvalidTypeError, InvalidValueError
from numba_dense.kernels.variants import ACTIVATIONS, IDENTITY, RELU

from .conftest import DTYPES, assert_close, random_array

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)
ALL = np.empty(0, np.int64)


def random_csr(rng, n_rows, n_cols, density, dtype, shuffle_indices=False):
    """A scipy CSR matrix, duplicate-free; its indices within rows unsorted on request."""
    M = sp.random(n_rows, n_cols, density=density, format="csr", dtype=np.float64,
                  random_state=np.random.RandomState(rng.integers(2**31)))
    M.data = rng.standard_normal(M.data.shape[0])
    M = M.astype(dtype)
    if shuffle_indices:
        for i in range(n_rows):
            lo, hi = M.indptr[i], M.indptr[i + 1]
            perm = rng.permutation(hi - lo)
            M.indices[lo:hi] = M.indices[lo:hi][perm]
            M.data[lo:hi] = M.data[lo:hi][perm]
        M.has_sorted_indices = False
    return M


def twin_forward(M, rows, W, b, act):
    dense = M.toarray()
    Xb = dense if rows.shape[0] == 0 else dense[rows]
    return ref._activate((Xb @ W.T + b).astype(W.dtype), act)


def twin_gradient(M, rows, D, dW, alpha, beta):
    dense = M.toarray()
    Xb = dense if rows.shape[0] == 0 else dense[rows]
    return (alpha * (D.T @ Xb) + beta * dW).astype(dW.dtype)


# ----------------------------------------------------------------------------- the record

def test_csr_record_of_a_scipy_matrix_has_int64_indices_and_the_values(dtype):
    M = sp.csr_matrix(np.array([[0, 1.5, 0], [0, 0, 0], [2, 0, -1]], dtype))
    M.indices = M.indices.astype(np.int32)
    M.indptr = M.indptr.astype(np.int32)
    X = S.csr(M)
    assert isinstance(X, S.CSR)
    assert X.data.dtype == dtype and X.indices.dtype == np.int64 and X.indptr.dtype == np.int64
    assert X.n_cols == 3 and S.csr_rows(X) == 3
    np.testing.assert_array_equal(X.data, M.data)
    np.testing.assert_array_equal(X.indices, M.indices)
    np.testing.assert_array_equal(X.indptr, M.indptr)
    assert S.csr(X) is X


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array,
                                  sp.csc_array])
def test_csr_takes_every_scipy_format_as_its_csr(make):
    dense = np.array([[0, 1.0, 0, 2], [3, 0, 0, 0]])
    X = S.csr(make(dense))
    np.testing.assert_array_equal(
        sp.csr_matrix((X.data, X.indices, X.indptr), shape=(2, X.n_cols)).toarray(), dense)


def test_csr_converts_values_with_dtype_and_refuses_others_without():
    M = sp.csr_matrix(np.eye(3, dtype=np.int64))
    with pytest.raises(InvalidTypeError, match="csr: matrix has values of dtype int64; pass "
                                               "dtype=np.float32"):
        S.csr(M)
    assert S.csr(M, np.float32).data.dtype == np.float32
    assert S.csr(sp.csr_matrix(np.eye(3)), np.float32).data.dtype == np.float32


@pytest.mark.parametrize("value,error,message", [
    (np.eye(3), InvalidTypeError, "csr: matrix must be a scipy.sparse matrix or array "
                                  "(CSR or CSC), got ndarray"),
    ([[1.0]], InvalidTypeError, "got list"),
])
def test_csr_refuses_what_is_not_sparse(value, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        S.csr(value)


def bad_records():
    good = S.csr(sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3.0, 0]])))
    return [
        (good._replace(indptr=np.array([1, 2, 3], np.int64)), "X.indptr[0] is 1: must be 0"),
        (good._replace(indptr=np.array([0, 2, 1], np.int64)),
         "X.indptr decreases at row 1 (2 then 1): it must never decrease"),
        (good._replace(indptr=np.array([0, 2, 4], np.int64)),
         "X.indptr[-1] is 4 but X.data has 3 entries"),
        (good._replace(indptr=np.empty(0, np.int64)),
         "X.indptr is empty: it must hold n_rows + 1 entries, starting with 0"),
        (good._replace(indices=np.array([0, 3, 1], np.int64)),
         "X.indices[1] is 3, outside range(3) (n_cols)"),
        (good._replace(indices=np.array([0, -1, 1], np.int64)),
         "X.indices[1] is -1, outside range(3) (n_cols)"),
        (good._replace(indices=np.array([0, 1], np.int64)),
         "X.indices has 2 entries but X.data has 3"),
        (good._replace(n_cols=-1), "X.n_cols is -1: must be at least 0"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_bad_structure_is_one_line_naming_the_argument(index):
    X, message = bad_records()[index]
    W, b, out = np.ones((2, 3)), np.zeros(2), np.empty((2, 2))
    with pytest.raises(InvalidValueError) as info:
        S.sparse_forward(X, ALL, W, b, out, IDENTITY)
    assert str(info.value) == "sparse_forward: " + message
    with pytest.raises(InvalidValueError) as info:
        S.sparse_weight_gradient(X, ALL, out, W, 1.0, 0.0)
    assert str(info.value) == "sparse_weight_gradient: " + message
    with pytest.raises(InvalidValueError) as info:
        S.csr(X)
    assert str(info.value) == "csr: " + message.replace("X.", "matrix.")


def test_a_scipy_matrix_with_an_index_out_of_range_is_refused():
    M = sp.csr_matrix((np.ones(2), np.array([0, 5]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(InvalidValueError, match=r"csr: matrix.indices\[1\] is 5, outside "
                                                r"range\(3\) \(n_cols\)"):
        S.csr(M)


# ----------------------------------------------------------------------------- forward

@given(m=st.integers(0, 30), n_in=st.integers(1, 40), n_out=st.integers(1, 13),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), act=st.sampled_from(sorted(
           ACTIVATIONS.values())), subset=st.booleans(), unsorted=st.booleans(), dtype=dtypes,
       seed=seeds)
def test_sparse_forward_matches_the_dense_product(m, n_in, n_out, density, act, subset,
                                                  unsorted, dtype, seed):
    rng = np.random.default_rng(seed)
    M = random_csr(rng, m, n_in, density, dtype, unsorted)
    W, b = random_array(rng, (n_out, n_in), dtype), random_array(rng, (n_out,), dtype)
    rows = rng.integers(0, m, rng.integers(1, 2 * m + 1)) if subset and m > 0 else ALL
    out = np.full((rows.shape[0] if rows.shape[0] else m, n_out), np.nan, dtype)
    S.sparse_forward(S.csr(M), rows, W, b, out, act)
    assert_close(out, twin_forward(M, rows, W, b, act), dtype, scale=n_in)


def test_sparse_forward_edge_rows(dtype):
    # an empty row, a row with every column, a one-non-zero row; 0 rows
    n_in, n_out = 9, 6
    dense = np.zeros((3, n_in), dtype)
    dense[1] = np.arange(1, n_in + 1)
    dense[2, 4] = -2
    M = sp.csr_matrix(dense)
    rng = np.random.default_rng(1)
    W, b = random_array(rng, (n_out, n_in), dtype), random_array(rng, (n_out,), dtype)
    for act in (IDENTITY, RELU):
        out = np.empty((3, n_out), dtype)
        S.sparse_forward(S.csr(M), ALL, W, b, out, act)
        assert_close(out, twin_forward(M, ALL, W, b, act), dtype, scale=n_in * 10)
        assert_close(out[0], ref._activate(b.copy(), act), dtype)
    empty = S.csr(sp.csr_matrix((0, n_in), dtype=dtype))
    out = np.empty((0, n_out), dtype)
    S.sparse_forward(empty, ALL, W, b, out, RELU)
    dW = np.ones((n_out, n_in), dtype)
    S.sparse_weight_gradient(empty, ALL, out, dW, 1.0, 1.0)
    assert (dW == 1).all()
    S.sparse_weight_gradient(empty, ALL, out, dW, 1.0, 0.0)
    assert (dW == 0).all()


def test_repeated_indices_add_up_as_in_scipy(dtype):
    M = sp.csr_matrix((np.array([1.0, 2.0, 4.0], dtype), np.array([2, 0, 2]),
                       np.array([0, 3])), shape=(1, 3))
    X = S.csr(M)
    W, b = np.array([[1.0, 10.0, 100.0]], dtype), np.zeros(1, dtype)
    out = np.empty((1, 1), dtype)
    S.sparse_forward(X, ALL, W, b, out, IDENTITY)
    assert out[0, 0] == M.toarray()[0] @ W[0] == 502
    dW = np.zeros((1, 3), dtype)
    S.sparse_weight_gradient(X, ALL, np.ones((1, 1), dtype), dW, 1.0, 0.0)
    np.testing.assert_array_equal(dW, M.toarray())


# ----------------------------------------------------------------------------- gradient

@given(m=st.integers(0, 30), n_in=st.integers(1, 40), n_out=st.integers(1, 13),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
       ab=st.sampled_from([(1.0, 0.0), (1.0, 1.0), (-0.1, 1.0), (0.5, 2.0), (0.0, 0.5)]),
       subset=st.booleans(), unsorted=st.booleans(), dtype=dtypes, seed=seeds)
def test_sparse_weight_gradient_matches_the_dense_product(m, n_in, n_out, density, ab, subset,
                                                          unsorted, dtype, seed):
    rng = np.random.default_rng(seed)
    M = random_csr(rng, m, n_in, density, dtype, unsorted)
    rows = rng.integers(0, m, rng.integers(1, 2 * m + 1)) if subset and m > 0 else ALL
    D = random_array(rng, (rows.shape[0] if rows.shape[0] else m, n_out), dtype)
    dW = random_array(rng, (n_out, n_in), dtype)
    expected = twin_gradient(M, rows, D, dW, *ab)
    S.sparse_weight_gradient(S.csr(M), rows, D, dW, *ab)
    assert_close(dW, expected, dtype, scale=max(m, 1) * 4)


def test_gradient_and_forward_of_a_one_hot_batch_in_an_order(dtype):
    # the training shape: positions start:start + m of an order, and the fused SGD step
    rng = np.random.default_rng(3)
    n, n_in, n_out = 50, 40, 7
    cols = np.stack([rng.integers(0, 10, n) + 10 * q for q in range(4)], 1)
    M = sp.csr_matrix((np.ones(n * 4, dtype), cols.ravel(), np.arange(0, 4 * n + 1, 4)),
                      shape=(n, n_in))
    X, order = S.csr(M), rng.permutation(n).astype(np.int64)
    W, b = random_array(rng, (n_out, n_in), dtype), random_array(rng, (n_out,), dtype)
    for start, m in ((0, 16), (16, 16), (48, 2)):
        rows = order[start:start + m]
        out = np.empty((m, n_out), dtype)
        S.csr_forward_rows(X, order, start, W, b, out, RELU)
        assert_close(out, twin_forward(M, rows, W, b, RELU), dtype, scale=n_in)
        D = random_array(rng, (m, n_out), dtype)
        expected = twin_gradient(M, rows, D, W, -0.1, 1.0)
        S.csr_gradient_rows(X, order, start, D, W, -0.1, 1.0)
        assert_close(W, expected, dtype, scale=m)
    # storage order: an empty order, positions are rows
    out = np.empty((5, n_out), dtype)
    S.csr_forward_rows(X, ALL, 10, W, b, out, IDENTITY)
    assert_close(out, twin_forward(M, np.arange(10, 15), W, b, IDENTITY), dtype, scale=n_in)


# ----------------------------------------------------------------------------- errors

def good_call(dtype=np.float64):
    X = S.csr(sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3.0, 0]], dtype)))
    return X, np.ones((4, 3), dtype), np.zeros(4, dtype), np.empty((2, 4), dtype)


@pytest.mark.parametrize("case,error,message", [
    ("W32", InvalidTypeError,
     "sparse_forward: W has dtype float32 but X.data has float64; pass arrays of one float "
     "dtype"),
    ("data32", InvalidTypeError,
     "sparse_forward: W has dtype float64 but X.data has float32; pass arrays of one float "
     "dtype"),
    ("rows", InvalidValueError, "sparse_forward: rows[1] is 2, outside range(2)"),
    ("Wcols", InvalidValueError, "sparse_forward: W has 4 columns but X has 3"),
    ("outrows", InvalidValueError, "sparse_forward: out has 3 rows but X has 2"),
    ("act", InvalidValueError, "sparse_forward: act is 99, not an activation code"),
    ("notcsr", InvalidTypeError, "sparse_forward: X must be a kernels.CSR (kernels.csr(matrix)),"
                                 " got csr_matrix"),
    ("aliased", InvalidValueError, "sparse_forward: out shares memory with W"),
])
def test_forward_errors_are_one_line(case, error, message):
    X, W, b, out = good_call()
    rows = ALL
    act = IDENTITY
    if case == "W32":
        W = W.astype(np.float32)
    elif case == "data32":
        X = X._replace(data=X.data.astype(np.float32))
    elif case == "rows":
        rows = np.array([0, 2], np.int64)
    elif case == "Wcols":
        W = np.ones((4, 4))
    elif case == "outrows":
        out = np.empty((3, 4))
    elif case == "act":
        act = 99
    elif case == "notcsr":
        X = sp.csr_matrix(np.ones((2, 3)))
    elif case == "aliased":
        big = np.ones(20)
        W, out = big[:12].reshape(4, 3), big[8:16].reshape(2, 4)
    with pytest.raises(error) as info:
        S.sparse_forward(X, rows, W, b, out, act)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case,error,message", [
    ("D32", InvalidTypeError, "sparse_weight_gradient: D has dtype float32 but X.data has "
                              "float64"),
    ("Drows", InvalidValueError, "sparse_weight_gradient: D has 3 rows but X has 2"),
    ("dWrows", InvalidValueError, "sparse_weight_gradient: dW has 5 rows (columns of D) but D "
                                  "has 4"),
    ("dWcols", InvalidValueError, "sparse_weight_gradient: dW has 2 columns but X has 3"),
    ("alpha", InvalidValueError, "sparse_weight_gradient: alpha must be finite, got nan"),
    ("readonly", InvalidTypeError, "sparse_weight_gradient: dW is read-only"),
])
def test_gradient_errors_are_one_line(case, error, message):
    X, W, _, D = good_call()
    dW = np.zeros_like(W)
    alpha = 1.0
    if case == "D32":
        D = D.astype(np.float32)
    elif case == "Drows":
        D = np.ones((3, 4))
    elif case == "dWrows":
        dW = np.zeros((5, 3))
    elif case == "dWcols":
        dW = np.zeros((4, 2))
    elif case == "alpha":
        alpha = float("nan")
    elif case == "readonly":
        dW.flags.writeable = False
    with pytest.raises(error) as info:
        S.sparse_weight_gradient(X, ALL, D, dW, alpha, 0.0)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_int32_indices_in_a_record_built_by_hand_work_and_from_njit_code():
    M = sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3.0, 0]]))
    X = S.CSR(M.data, M.indices.astype(np.int32), M.indptr.astype(np.int32), 3)
    W, b, out = np.ones((4, 3)), np.zeros(4), np.empty((2, 4))
    S.sparse_forward(X, ALL, W, b, out, IDENTITY)
    np.testing.assert_array_equal(out, M.toarray() @ W.T)

    @njit
    def inside(data, indices, indptr, W, b, out):
        S.sparse_forward(S.CSR(data, indices, indptr, 3), np.empty(0, np.int64), W, b, out, 0)

    out[:] = 0
    inside(M.data, M.indices.astype(np.int64), M.indptr.astype(np.int64), W, b, out)
    np.testing.assert_array_equal(out, M.toarray() @ W.T)
