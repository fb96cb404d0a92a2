"""Data-parallel training over MPI, run for real: mpiexec -n 2 launched as a subprocess."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data.targets import TargetScaling, target_moments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

mpi4py = pytest.importorskip("mpi4py", reason="MPI tests need the [mpi] extra: "
                             "pip install -e '.[test,mpi]'")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec found (pip install -e '.[mpi]' brings MPICH's)",
                allow_module_level=True)

_COMMON = """
import sys, numpy as np
from mpi4py import MPI
from numba_dense.model import MLP
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
folder = sys.argv[1]
"""


def _mpirun(tmp_path, body, *args, n=2, timeout=240):
    script = tmp_path / "job.py"
    script.write_text(_COMMON + textwrap.dedent(body))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script), str(tmp_path),
                           *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)


def _shards(rng, n_features, n_outputs):
    """Two unequal shards, so the last global batch is split unevenly across ranks."""
    X = rng.standard_normal((103 + 77, n_features))
    Y = np.tanh(X @ rng.standard_normal((n_features, n_outputs)))
    return (X[:103], Y[:103]), (X[103:], Y[103:])


@pytest.mark.parametrize("optimizer, momentum, streamed", [("sgd", 0.0, False),
                                                           ("sgd", 0.9, True),
                                                           ("adam", 0.0, False)])
def test_two_ranks_equal_one_process_on_the_global_batches(tmp_path, optimizer, momentum,
                                                           streamed):
    rng = np.random.default_rng(0)
    shards = _shards(rng, 5, 2)
    for r, (X, Y) in enumerate(shards):
        np.save(tmp_path / ("X%d.npy" % r), X)
        np.save(tmp_path / ("Y%d.npy" % r), Y)
    batch, epochs = 10, 3
    result = _mpirun(tmp_path, """
        streamed, epochs, batch, momentum = sys.argv[2] == "1", *map(float, sys.argv[3:6])
        optimizer = sys.argv[6]
        X = folder + "/X%d.npy" % rank
        Y = folder + "/Y%d.npy" % rank
        if not streamed:
            X, Y = np.load(X), np.load(Y)
        net = MLP([5, 7, 2], hidden="tanh", dtype=np.float64, seed=rank)  # rank 0's wins
        h = net.fit(X, Y, epochs=int(epochs), batch_size=int(batch), lr=0.05, momentum=momentum,
                    shuffle=False, comm=comm, chunk_rows=20, optimizer=optimizer,
                    standardize_target=optimizer == "adam")  # the scaling over both ranks
        np.save(folder + "/params%d.npy" % rank, net.params)
        np.save(folder + "/loss%d.npy" % rank, h.loss)
    """, "1" if streamed else "0", str(epochs), str(batch), str(momentum), optimizer)
    assert result.returncode == 0, result.stdout + result.stderr
    # One process, stepping on the same global minibatches: local batch s of rank 0, then of
    # rank 1, concatenated; 11 steps, the last two uneven (10 + 7 rows, then 3 + 0).
    reference = MLP([5, 7, 2], hidden="tanh", dtype=np.float64, seed=0)
    (X0, Y0), (X1, Y1) = shards
    if optimizer == "adam":  # standardized targets: the mean and scale of both shards' rows
        reference.target_scaling = TargetScaling.learn(target_moments([Y0, Y1]))
    losses = []
    for _ in range(epochs):
        total, rows = 0.0, 0
        for s in range(0, 110, batch):
            Xg = np.vstack([X0[s:s + batch], X1[s:s + batch]])
            Yg = np.vstack([Y0[s:s + batch], Y1[s:s + batch]])
            total += reference.cost(Xg, Yg) * len(Xg)
            rows += len(Xg)
            reference.partial_fit(Xg, Yg, batch_size=len(Xg), lr=0.05, momentum=momentum,
                                  optimizer=optimizer)
        losses.append(total / rows)
    p0, p1 = np.load(tmp_path / "params0.npy"), np.load(tmp_path / "params1.npy")
    np.testing.assert_array_equal(p0, p1)  # every rank holds the same parameters
    np.testing.assert_allclose(p0, reference.params, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.load(tmp_path / "loss0.npy"), losses, rtol=1e-12)


def test_two_ranks_with_embeddings_equal_one_process_on_the_global_batches(tmp_path):
    """Category embeddings over MPI: the tables are part of the flat parameters, so the
    all-reduced gradient steps them as one process does on the global minibatches."""
    rng = np.random.default_rng(1)
    shards = _shards(rng, 3, 1)
    for r, (X, Y) in enumerate(shards):
        X[:, 1] = rng.integers(0, 6, len(X))
        np.save(tmp_path / ("X%d.npy" % r), X)
        np.save(tmp_path / ("Y%d.npy" % r), Y)
    result = _mpirun(tmp_path, """
        X, Y = np.load(folder + "/X%d.npy" % rank), np.load(folder + "/Y%d.npy" % rank)
        net = MLP([3, 5, 1], embeddings={1: 6}, dtype=np.float64, seed=rank)
        net.fit(X, Y, epochs=2, batch_size=10, lr=0.01, shuffle=False, comm=comm,
                optimizer="adam", standardize_target=False)
        np.save(folder + "/params%d.npy" % rank, net.params)
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    reference = MLP([3, 5, 1], embeddings={1: 6}, dtype=np.float64, seed=0)
    (X0, Y0), (X1, Y1) = shards
    for _ in range(2):
        for s in range(0, 110, 10):
            Xg = np.vstack([X0[s:s + 10], X1[s:s + 10]])
            Yg = np.vstack([Y0[s:s + 10], Y1[s:s + 10]])
            reference.partial_fit(Xg, Yg, batch_size=len(Xg), lr=0.01, optimizer="adam")
    p0, p1 = np.load(tmp_path / "params0.npy"), np.load(tmp_path / "params1.npy")
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_allclose(p0, reference.params, rtol=1e-12, atol=1e-13)


def test_two_ranks_with_dropout_step_on_each_ranks_own_masks(tmp_path):
    """Dropout over MPI: each rank's minibatch is dropped out by the masks of a seed hashed
    from the epoch's seed (drawn from the fit's generator, as one process draws it), the
    global step count and the rank (``kernels.dropout_gradient``); the ranks' summed
    gradients make one plain SGD step. Recomputed here in one process from those seeds."""
    from numba_dense import kernels
    from numba_dense.kernels.masks import mask_base
    from numba_dense.model.training.loop import network_record, workspace

    rng = np.random.default_rng(2)
    shards = _shards(rng, 5, 2)
    for r, (X, Y) in enumerate(shards):
        np.save(tmp_path / ("X%d.npy" % r), X)
        np.save(tmp_path / ("Y%d.npy" % r), Y)
    batch, epochs, lr, fit_seed = 10, 2, 0.05, 11
    result = _mpirun(tmp_path, """
        X, Y = np.load(folder + "/X%d.npy" % rank), np.load(folder + "/Y%d.npy" % rank)
        net = MLP([5, 7, 2], hidden="tanh", dtype=np.float64, seed=rank)  # rank 0's wins
        h = net.fit(X, Y, epochs=2, batch_size=10, lr=0.05, shuffle=False, comm=comm,
                    dropout=0.3, seed=11, standardize_target=False)
        np.save(folder + "/params%d.npy" % rank, net.params)
        np.save(folder + "/loss%d.npy" % rank, h.loss)
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    reference = MLP([5, 7, 2], hidden="tanh", dtype=np.float64, seed=0)
    params = reference.params.copy()
    network = network_record(reference)
    work = workspace(reference, batch)
    generator = np.random.default_rng(fit_seed)
    step, losses = 0, []
    for _ in range(epochs):
        epoch_seed = int(generator.integers(2 ** 63))
        total_cost, total_rows = 0.0, 0
        for s in range(0, 110, batch):
            summed = np.zeros_like(params)
            for rank, (X, Y) in enumerate(shards):
                if s >= len(X):
                    continue
                grads = np.zeros_like(params)
                seed = int(mask_base(epoch_seed, step, rank)) & (2 ** 63 - 1)
                record = kernels.dropout(kernels.batches(batch), [0.3], seed)
                total_cost += kernels.dropout_gradient(X[s:s + batch], Y[s:s + batch],
                                                       params, grads, network, record, work,
                                                       1.0)
                summed += grads
                total_rows += len(X[s:s + batch])
            rows = sum(len(X[s:s + batch]) for X, _ in shards)
            params -= lr * (summed / rows)
            step += 1
        losses.append(total_cost / total_rows)
    p0, p1 = np.load(tmp_path / "params0.npy"), np.load(tmp_path / "params1.npy")
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_allclose(p0, params, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.load(tmp_path / "loss0.npy"), losses, rtol=1e-12)
    # and dropout did something: without it the same steps end elsewhere
    plain = MLP([5, 7, 2], hidden="tanh", dtype=np.float64, seed=0)
    for _ in range(epochs):
        for s in range(0, 110, batch):
            Xg = np.vstack([X[s:s + batch] for X, _ in shards])
            Yg = np.vstack([Y[s:s + batch] for _, Y in shards])
            plain.partial_fit(Xg, Yg, batch_size=len(Xg), lr=lr)
    assert not np.allclose(plain.params, p0, atol=1e-3)


def test_only_rank_zero_prints_and_checkpoints_and_resume_works(tmp_path):
    rng = np.random.default_rng(1)
    for r, (X, Y) in enumerate(_shards(rng, 4, 1)):
        np.save(tmp_path / ("X%d.npy" % r), X)
        np.save(tmp_path / ("Y%d.npy" % r), Y[:, 0])
    body = """
        epochs = int(sys.argv[2])
        net = MLP([4, 6, 1], seed=0)
        h = net.fit(folder + "/X%d.npy" % rank, folder + "/Y%d.npy" % rank, epochs=epochs,
                    batch_size=8, lr=0.05, momentum=0.9, seed=3, comm=comm, verbose=True,
                    checkpoint=folder + "/ck.npz", resume=True, validation_fraction=0.2)
        np.save(folder + "/p%d_%d.npy" % (rank, epochs), net.params)
        open(folder + "/counts%d.txt" % rank, "w").write("%d %d" % (len(h.comm_seconds),
                                                                    len(h.val_loss)))
    """
    first = _mpirun(tmp_path, body, "2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("epoch 2/2") == 1  # rank 0 alone prints
    assert (tmp_path / "counts1.txt").read_text() == "2 2"  # history on every rank
    resumed = _mpirun(tmp_path, body, "4")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "epoch 1/4" not in resumed.stdout
    (tmp_path / "ck.npz").unlink()
    straight = _mpirun(tmp_path, body, "4")
    np.testing.assert_array_equal(np.load(tmp_path / "p0_4.npy"), np.load(tmp_path / "p1_4.npy"))
    assert straight.returncode == 0, straight.stderr


@pytest.mark.parametrize("setup, message", [
    ("X, Y = (X[:0], Y[:0]) if rank == 1 else (X, Y)",
     "rank 1: ValueError: X has no rows: every rank needs a share of the data"),
    ("X = X[:, :4] if rank == 1 else X",
     "ranks hold data with different feature counts: rank 0: 5, rank 1: 4"),
    ("hidden = [9] if rank == 1 else [8]",
     "ranks built different networks: rank 0: MLP([5, 8, 1]"),
    ("Y = Y * np.nan if rank == 0 else Y",
     "rank 0: ValueError: y contains NaN at row 0, column 0"),
    ("options = dict(epochs=3 if rank == 1 else 1)",
     "ranks were given different settings: epochs (rank 0: 1, rank 1: 3)"),
    ("options = dict(epochs=1, lr=0.1 if rank == 1 else 0.01)",
     "lr (rank 0: 0.01, rank 1: 0.1)"),
    # an argument refused on one rank only, before any data is read: raised on both
    ("options = dict(epochs=1, dropout=1.5 if rank == 1 else 0.2)",
     "rank 1: ValueError: dropout must be >= 0.0 and < 1.0, got 1.5"),
    ("options = dict(epochs=1, dropout='x' if rank == 0 else 0.2)",
     "rank 0: TypeError: dropout must be a real number"),
])
def test_bad_setups_fail_on_every_rank_without_hanging(tmp_path, setup, message):
    body = """
        rng = np.random.default_rng(rank)
        X, Y = rng.standard_normal((40, 5)), rng.standard_normal(40)
        hidden = [8]
        options = dict(epochs=1)
        SETUP
        net = MLP([X.shape[1], *hidden, 1], seed=0)
        try:
            net.fit(X, Y, comm=comm, **options)
        except ValueError as exc:  # a file per rank: mpiexec may interleave their stdout
            open(folder + "/error%d.txt" % rank, "w").write(str(exc))
            sys.exit(3)
    """
    result = _mpirun(tmp_path, body.replace("SETUP", setup), timeout=120)
    assert result.returncode != 0
    for r in (0, 1):
        error = tmp_path / ("error%d.txt" % r)
        assert error.exists(), "rank %d raised nothing: %s" % (r, result.stdout + result.stderr)
        assert message in error.read_text()


def test_cli_train_with_mpi(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X[:, 0] * 2)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, "-m", "numba_dense", "train", "--mpi", "--data",
         str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy"), "--epochs", "2",
         "--hidden-sizes", "8", "--save", str(tmp_path / "m.npz")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch 2/2") == 1
    assert MLP.load(tmp_path / "m.npz").layer_sizes == [6, 8, 1]


def test_cli_softmax_on_label_sorted_data_agrees_on_the_class_count(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    labels = np.sort(rng.integers(0, 4, 400))  # rank 0's half holds only the low labels
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", labels)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    base = [MPIEXEC, "-n", "2", sys.executable, "-m", "numba_dense", "train", "--mpi", "--data",
            str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy"), "--epochs", "1",
            "--hidden-sizes", "8", "--output", "softmax"]
    result = subprocess.run(base + ["--save", str(tmp_path / "m.npz")], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert MLP.load(tmp_path / "m.npz").layer_sizes == [6, 8, 4]
    result = subprocess.run(base + ["--classes", "6", "--save", str(tmp_path / "m6.npz")],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert MLP.load(tmp_path / "m6.npz").layer_sizes == [6, 8, 6]
