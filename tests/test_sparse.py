"""Sparse (CSR) input through the first layer: the record, its factory and the compiled
forward product and weight gradient, against scipy's ``toarray()`` products."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from numba_dense import kernels
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


# ----------------------------------------------------------------------------- whole networks
#
# The whole-network kernels take X as a CSR record too; their twins densify it. One
# compiled version per kernel and dtype covers every case below (the network, cost,
# optimizer and order are values, not types).

NETWORKS = [
    # sizes, acts, loss, optimizer, order, weighted
    ([20, 1], [0], "mse", "adam", "storage", False),  # dense X would stream this one
    ([20, 6, 3], [1, 0], "cross_entropy", "sgd", "permutation", False),  # fused SGD
    ([20, 7, 5, 2], [2, 3, 0], "binary_cross_entropy", "adam", "subset", True),
    ([20, 9, 4], [4, 0], "poisson", "sgd_momentum", "permutation", True),
    ([20, 5, 1], [1, 1], "mse", "adamw", "storage", False),
]


def _problem(dtype, sizes, loss, n=37, seed=0):
    rng = np.random.default_rng(seed)
    dense = random_csr(rng, n, sizes[0], 0.15, dtype).toarray()
    dense[3] = 0  # an empty row
    M = sp.csr_matrix(dense)
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    elif loss == "binary_cross_entropy":
        Y = (rng.random((n, sizes[-1])) < 0.5).astype(dtype)
    elif loss == "poisson":
        Y = rng.poisson(1.0, (n, sizes[-1])).astype(dtype)
    else:
        Y = random_array(rng, (n, sizes[-1]), dtype)
    P = kernels.param_count(np.array(sizes))
    params = random_array(rng, (P,), dtype, 0.3)
    weights = rng.random(n).astype(dtype) * 2
    return M, Y, params, weights, rng


def _optimizer(name, params):
    if name == "sgd_momentum":
        return kernels.optimizer("sgd", params, 0.05, momentum=0.9)
    return kernels.optimizer(name, params, 0.01 if name != "sgd" else 0.05)


@pytest.mark.parametrize("sizes,acts,loss,opt,order_kind,weighted", NETWORKS)
def test_train_epoch_on_csr_matches_the_numpy_loop(dtype, sizes, acts, loss, opt, order_kind,
                                                   weighted):
    M, Y, params, weights, rng = _problem(dtype, sizes, loss)
    n, batch = M.shape[0], 8
    network = kernels.network(sizes, acts, loss)
    order = {"storage": None, "permutation": rng.permutation(n),
             "subset": rng.permutation(n)[:20]}[order_kind]
    batches = kernels.batches(batch, order, weights if weighted else None)
    got, want = params.copy(), params.copy()
    opt_got, opt_want = _optimizer(opt, got), _optimizer(opt, want)
    work = np.empty(kernels.workspace_size(network.sizes, batch), dtype)
    X = kernels.csr(M)
    for _ in range(2):
        cost = kernels.train_epoch(X, Y, got, np.empty_like(got), network, opt_got, batches,
                                   work)
        expected = ref.train_epoch(X, Y, want, np.empty_like(want), network, opt_want,
                                   batches, None)
        assert cost == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(got, want, dtype, scale=10)
    assert opt_got.steps[0] == opt_want.steps[0]
    # the epoch holds W_1 and its optimizer state transposed: both are back in place
    assert_close(opt_got.state, opt_want.state, dtype, scale=10)


@pytest.mark.parametrize("n_rows,ahead_rows", [(0, 0), (1, 1), (40, 40), (200, 37)])
def test_the_rows_of_an_order_copied_with_prefetch_are_scipys(dtype, n_rows, ahead_rows):
    # csr_take_rows prefetches CSR_PREFETCH_ROWS ahead: orders shorter and longer than
    # that, with repeated rows, empty rows and a subset
    rng = np.random.default_rng(n_rows)
    M = sp.random(max(n_rows, 1), 30, density=0.2, format="csr", random_state=n_rows,
                  dtype=dtype)
    M.data[:] = rng.standard_normal(M.nnz)
    order = rng.integers(0, M.shape[0], ahead_rows).astype(np.int64)
    got = S.csr_take_rows(kernels.csr(M), order)
    want = M[order]
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
    assert got.n_cols == 30


def test_train_epoch_on_csr_equals_it_on_the_dense_matrix(dtype):
    # the same network trained on X and on its CSR record: the same parameters (sums in
    # another order: rounding apart)
    sizes = [20, 6, 1]
    M, Y, params, _, rng = _problem(dtype, sizes, "mse", n=50)
    network = kernels.network(sizes, [1, 0], "mse")
    work = np.empty(kernels.workspace_size(network.sizes, 16), dtype)
    order = rng.permutation(50)
    results = []
    for X in (M.toarray(), kernels.csr(M)):
        p = params.copy()
        opt = kernels.optimizer("adam", p, 0.01)
        costs = [kernels.train_epoch(X, Y, p, np.empty_like(p), network, opt,
                                     kernels.batches(16, order), work) for _ in range(3)]
        results.append((costs, p))
    np.testing.assert_allclose(results[0][0], results[1][0],
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(results[0][1], results[1][1], dtype, scale=10)


@pytest.mark.parametrize("sizes,acts,loss,opt,order_kind,weighted", NETWORKS[1:4])
def test_cost_gradient_and_prediction_on_csr_match_the_twins(dtype, sizes, acts, loss, opt,
                                                             order_kind, weighted):
    M, Y, params, weights, _ = _problem(dtype, sizes, loss)
    network = kernels.network(sizes, acts, loss)
    X, batch = kernels.csr(M), 8  # several batches: the gradient adds up across them
    work = np.empty(kernels.workspace_size(network.sizes, batch), dtype)
    sw = weights if weighted else None
    rel = 1e-5 if dtype == np.float32 else 1e-12

    out, want = np.empty((M.shape[0], sizes[-1]), dtype), np.empty((M.shape[0], sizes[-1]), dtype)
    kernels.predict_into(X, params, network, out, batch, work)
    ref.predict_into(X, params, network, want, batch, None)
    assert_close(out, want, dtype, scale=10)

    assert (kernels.dataset_cost(X, Y, params, network, batch, work, sw)
            == pytest.approx(ref.dataset_cost(X, Y, params, network, batch, None, sw), rel=rel))

    grads, twin = np.empty_like(params), np.empty_like(params)
    cost = kernels.loss_and_gradient(X, Y, params, grads, network, batch, work, sw)
    assert cost == pytest.approx(ref.loss_and_gradient(X, Y, params, twin, network, batch,
                                                       None, sw), rel=rel)
    assert_close(grads, twin, dtype, scale=10)

    total = kernels.batch_gradient(X, Y, params, grads, network, batch, work, 0.5)
    assert total == pytest.approx(ref.batch_gradient(X, Y, params, twin, network, batch, None,
                                                     0.5), rel=rel)
    assert_close(grads, twin, dtype, scale=10)


def test_train_epoch_on_a_hand_built_record_of_int32_indices():
    # epoch_rows copies such a record into int64 arrays; shuffled, csr_take_rows does
    sizes = [20, 4, 1]
    M, Y, params, _, rng = _problem(np.float64, sizes, "mse", n=30)
    network = kernels.network(sizes, [1, 0])
    work = np.empty(kernels.workspace_size(network.sizes, 8))
    hand = kernels.CSR(M.data, M.indices.astype(np.int32), M.indptr.astype(np.int32), 20)
    for order in (None, rng.permutation(30)):
        got, want = params.copy(), params.copy()
        for X, p in ((hand, got), (kernels.csr(M), want)):
            kernels.train_epoch(X, Y, p, np.empty_like(p), network,
                                kernels.optimizer("sgd", p, 0.05, momentum=0.5),
                                kernels.batches(8, order), work)
        np.testing.assert_array_equal(got, want)


def test_whole_network_kernels_on_a_csr_of_no_rows():
    sizes = [6, 3, 1]
    network = kernels.network(sizes, [1, 0])
    X = kernels.csr(sp.csr_matrix((0, 6)))
    Y = np.empty((0, 1))
    params = np.ones(kernels.param_count(network.sizes))
    work = np.empty(kernels.workspace_size(network.sizes, 4))
    grads = np.full_like(params, 7.0)
    assert kernels.batch_gradient(X, Y, params, grads, network, 4, work, 1.0) == 0
    assert (grads == 0).all()
    assert kernels.dataset_cost(X, Y, params, network, 4, work) == 0
    assert kernels.train_epoch(X, Y, params, grads, network, kernels.optimizer("sgd", params, 0.1),
                               kernels.batches(4), work) == 0
    kernels.predict_into(X, params, network, np.empty((0, 1)), 4, work)
    with pytest.raises(InvalidValueError, match="loss_and_gradient: X has 0 rows"):
        kernels.loss_and_gradient(X, Y, params, grads, network, 4, work)


def _training_call(case):
    M = sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3.0, 0]]))
    X, Y = kernels.csr(M), np.zeros((2, 1))
    network = kernels.network([3, 1], [0])
    params = np.zeros(4)
    work = np.empty(kernels.workspace_size(network.sizes, 2))
    if case == "scipy":
        X = M
    elif case == "dtype":
        X = kernels.csr(M, np.float32)
    elif case == "columns":
        network = kernels.network([4, 1], [0])
        params = np.zeros(5)
    elif case == "indptr":
        X = X._replace(indptr=np.array([0, 2, 1], np.int64))
    elif case == "index":
        X = X._replace(indices=np.array([0, 7, 1], np.int64))
    elif case == "rows":
        Y = np.zeros((3, 1))
    elif case == "order":
        return lambda: kernels.train_epoch(X, Y, params, np.empty(4), network,
                                           kernels.optimizer("sgd", params, 0.1),
                                           kernels.batches(2, [0, 5]), work)
    return lambda: kernels.train_epoch(X, Y, params, np.empty_like(params), network,
                                       kernels.optimizer("sgd", params, 0.1),
                                       kernels.batches(2), work)


@pytest.mark.parametrize("case,error,message", [
    ("scipy", InvalidTypeError, "train_epoch: X must be a NumPy array or a kernels.CSR "
                                "(kernels.csr(matrix)), got csr_matrix"),
    ("dtype", InvalidTypeError, "train_epoch: Y has dtype float64 but X.data has float32; "
                                "pass arrays of one float dtype"),
    ("columns", InvalidValueError, "train_epoch: X has 3 columns but sizes[0] has 4"),
    ("indptr", InvalidValueError, "train_epoch: X.indptr decreases at row 1 (2 then 1)"),
    ("index", InvalidValueError, "train_epoch: X.indices[1] is 7, outside range(3) (n_cols)"),
    ("rows", InvalidValueError, "train_epoch: Y has 3 rows but X has 2"),
    ("order", InvalidValueError, "train_epoch: batches.order[1] is 5, outside range(2)"),
])
def test_training_on_a_bad_csr_is_one_line(case, error, message):
    with pytest.raises(error) as info:
        _training_call(case)()
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- the model

def _one_hot(rng, n, groups, per_group):
    cols = np.stack([rng.integers(0, per_group, n) + per_group * g for g in range(groups)], 1)
    return sp.csr_matrix((np.ones(n * groups), cols.ravel(), np.arange(0, n * groups + 1,
                                                                       groups)),
                         shape=(n, groups * per_group))


def test_mlp_trains_and_predicts_on_sparse_rows_as_on_their_dense_form():
    from numba_dense import MLP
    rng = np.random.default_rng(0)
    M = _one_hot(rng, 300, 4, 15)
    y = M @ rng.standard_normal(60) + 0.1 * rng.standard_normal(300)
    options = dict(epochs=3, batch_size=32, optimizer="adam", seed=1, validation_fraction=0.2)
    a, b = MLP([60, 8, 1], seed=0), MLP([60, 8, 1], seed=0)
    a.fit(M, y, **options)
    b.fit(M.toarray(), y, **options)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.history.val_loss, b.history.val_loss, rtol=1e-4)
    np.testing.assert_allclose(a.predict(M.tocsc()), b.predict(M.toarray()), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(a.gradients(M, y), b.gradients(M.toarray(), y), rtol=1e-3,
                               atol=1e-5)
    a.partial_fit(M[:50], y[:50])  # row slices of the matrix stay sparse


def test_mlp_refuses_bad_sparse_rows_in_one_line():
    from numba_dense import MLP
    net = MLP([3, 2, 1], seed=0)
    M = sp.csr_matrix(np.array([[1.0, 0, np.nan], [0, 2.0, 0]]))
    with pytest.raises(ValueError) as info:
        net.fit(M, [0.0, 1.0], epochs=1)
    assert str(info.value) == ("X contains NaN at row 0, column 2 (after conversion to "
                               "float32); only finite values are accepted")
    with pytest.raises(ValueError, match=r"^X has 4 features \(columns\) but the network has 3$"):
        net.fit(sp.csr_matrix(np.ones((2, 4))), [0.0, 1.0], epochs=1)
    with pytest.raises(ValueError, match="^X is empty: it has 0 rows$"):
        net.fit(sp.csr_matrix((0, 3)), np.empty(0), epochs=1)
