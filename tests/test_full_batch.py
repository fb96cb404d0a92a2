"""The full-batch cost and gradient split over threads (model.training.full_batch): the
parts' weighted means add up to the kernel's own over all rows."""

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.model.network.mlp import MLP
from numba_dense.model.training import full_batch, loop


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("parts", [1, 3])
def test_parts_add_up_to_the_whole(monkeypatch, weighted, parts):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((100, 4)), rng.standard_normal((100, 2))
    w = rng.uniform(0, 2, 100) if weighted else None
    if weighted:
        w[:34] = 0  # the first of 3 parts weighs nothing: it is left out
    net = MLP([4, 6, 2], hidden="tanh", dtype=np.float64, seed=0)
    monkeypatch.setattr(full_batch, "BLOCK_ROWS", 16)
    monkeypatch.setattr(full_batch, "MIN_PART_ROWS", 16)
    monkeypatch.setattr(kernels, "blas_threads_for", lambda sizes, batch: parts)
    theta = net.params.copy() + 0.1
    with full_batch.FullBatch(net, X, Y, w) as full:
        assert len(full.parts) == (parts - 1 if weighted and parts == 3 else parts)
        cost, grad = full.evaluate(theta)
    np.testing.assert_array_equal(net.params, theta)
    expected = np.empty_like(net.params)
    want = kernels.loss_and_gradient(X, Y, theta, expected, loop.network_record(net), 16,
                                     loop.workspace(net, 16),
                                     *(() if w is None else (w,)))
    assert cost == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-13)
    assert grad.dtype == np.float64


def test_blocks_keep_the_products_in_register_tiles_when_that_leaves_enough_rows(monkeypatch):
    """``block_rows`` follows the tile crossovers in force: 64-wide layers under 2^20
    multiply-adds get 256-row blocks; under 2^18 (64 rows) too few, so BLAS-sized blocks."""
    from numba_dense.kernels import config
    for name in ("FORWARD", "BACKPROP", "GRADIENT"):
        monkeypatch.setattr(config, name + "_TILED_MAX_MACS", 1 << 20)
    assert full_batch.block_rows([64, 64, 64, 10]) == 256
    assert full_batch.block_rows([50, 60, 1]) == 344  # 2^20 // 3000, down to a multiple of 8
    assert full_batch.block_rows([10, 3, 1]) == full_batch.BLOCK_ROWS  # at most that many
    assert full_batch.block_rows([784, 256, 10]) == full_batch.BLOCK_ROWS  # BLAS's
    monkeypatch.setattr(config, "BACKPROP_TILED_MAX_MACS", 1 << 18)  # the lowest counts
    assert full_batch.block_rows([64, 64, 64, 10]) == full_batch.BLOCK_ROWS
    monkeypatch.setattr(full_batch, "FIXED_BLOCK_ROWS", 100)
    assert full_batch.block_rows([64, 64, 64, 10]) == 100
