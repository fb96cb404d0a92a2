"""Error-times-input gradient accumulation: ``dW = scale * delta.T @ X`` for a whole batch."""


from ._cache import CACHE, njit
from .products import product_at_b
from ._checks import (FLAG, MATRIX, MATRIX_OUT, REAL, VECTOR_OUT, check_contiguous,
                      check_dim, check_finite, check_float_dtypes, check_separate, check_types,
                      kernel)


@njit(cache=CACHE)
def _column_sums(delta, db, scale, accumulate):
    """``db = scale * delta.sum(axis=0)`` (``+=`` with accumulate); delta (m, n), db (n,)."""
    m, n = delta.shape
    if not accumulate:
        db[:] = 0
    for i in range(m):
        row = delta[i]
        for j in range(n):
            db[j] += scale * row[j]


@kernel
def accumulate_gradients(delta: MATRIX, X: MATRIX, dW: MATRIX_OUT, db: VECTOR_OUT, scale: REAL,
                         accumulate: FLAG):
    """``dW = scale * delta.T @ X``, ``db = scale * delta.sum(axis=0)``; added in with accumulate.

    delta (m, n_out), X (m, n_in), dW (n_out, n_in), db (n_out,). One gemm sums the
    per-sample outer products ``delta_i x_i^T`` of the whole batch. dW and db share no
    memory with delta, X or each other.
    """
    check_types("accumulate_gradients", delta, X, dW, db, scale, accumulate)
    check_float_dtypes("accumulate_gradients", "delta, X, dW, db", delta, X, dW, db)
    check_dim("accumulate_gradients", "X", X.shape[0], "delta", delta.shape[0], "rows")
    check_dim("accumulate_gradients", "dW", dW.shape[0],
              "delta", delta.shape[1], "rows (columns of delta)")
    check_dim("accumulate_gradients", "dW", dW.shape[1], "X", X.shape[1], "columns")
    check_dim("accumulate_gradients", "db",
              db.shape[0], "delta", delta.shape[1], "elements (columns of delta)")
    check_contiguous("accumulate_gradients", "delta", delta)
    check_contiguous("accumulate_gradients", "X", X)
    check_contiguous("accumulate_gradients", "dW", dW)
    kernel = "accumulate_gradients"
    check_separate(kernel, "dW", dW, "delta", delta)
    check_separate(kernel, "dW", dW, "X", X)
    check_separate(kernel, "db", db, "delta", delta)
    check_separate(kernel, "db", db, "X", X)
    check_separate(kernel, "db", db, "dW", dW)
    check_finite(kernel, "scale", scale)
    product_at_b(delta, X, dW, scale, 1.0 if accumulate else 0.0)
    _column_sums(delta, db, scale, accumulate)
