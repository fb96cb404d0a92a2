"""Training from .npy files and memmaps: chunks, shuffling, bad values, memory, kill and resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data.sources import release_pages

from .conftest import epoch_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 6))
    y = np.tanh(X @ rng.standard_normal(6))
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    return folder, X, y


def test_streamed_file_trains_exactly_like_the_array_without_shuffling(files):
    folder, X, y = files
    a, b = MLP([6, 8, 1], seed=0), MLP([6, 8, 1], seed=0)
    ha = a.fit(X, y, epochs=2, batch_size=20, shuffle=False)
    hb = b.fit(str(folder / "X.npy"), str(folder / "y.npy"), epochs=2, batch_size=20,
               shuffle=False, chunk_rows=200)
    np.testing.assert_array_equal(a.params, b.params)
    assert hb.loss == pytest.approx(ha.loss, rel=1e-6)


def test_streamed_shuffling_is_seeded_and_covers_every_row(files):
    folder, X, y = files
    Xm = np.load(folder / "X.npy", mmap_mode="r")
    runs = []
    for seed in (1, 1, 2):
        net = MLP([6, 8, 1], seed=0)
        net.fit(Xm, folder / "y.npy", epochs=2, batch_size=10, chunk_rows=100, seed=seed)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    # Chunks are shuffled and rows inside them: the epoch sees each row once.
    from numba_dense.model.data.sources import StreamSource
    src = StreamSource(Xm, y, ("X", "y"), (np.float64, 1, "regression"), 100)
    seen = []
    for Xc, _, order, _ in src.segments(np.random.default_rng(0), True, 10):
        seen.extend(map(tuple, Xc[order]))
    assert sorted(seen) == sorted(map(tuple, X))
    segments = src.segments(np.random.default_rng(0), True, 10)
    first_rows = [tuple(Xc[0]) for Xc, _, _, _ in segments]
    assert first_rows != [tuple(X[a]) for a in range(0, 1000, 100)]


def test_float64_file_feeds_a_float32_network(files):
    folder, X, y = files
    a, b = MLP([6, 4, 1], seed=0), MLP([6, 4, 1], seed=0)
    a.fit(X.astype(np.float32), y, epochs=1, shuffle=False, batch_size=50)
    b.fit(folder / "X.npy", folder / "y.npy", epochs=1, shuffle=False, batch_size=50,
          chunk_rows=300)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(b.predict(folder / "X.npy"), a.predict(X))
    assert b.cost(folder / "X.npy", folder / "y.npy") == pytest.approx(a.cost(X, y), rel=1e-6)


def test_validation_fraction_of_a_stream(files):
    folder, X, y = files
    net = MLP([6, 4, 1], seed=0)
    h = net.fit(folder / "X.npy", folder / "y.npy", epochs=1, validation_fraction=0.2,
                chunk_rows=128)
    assert h.val_loss[0] == pytest.approx(net.cost(X[800:], y[800:]), rel=1e-5)


def _rows_of(source, shuffle):
    """Every row a source trains on in one epoch, and every row it evaluates, as tuples."""
    trained = [tuple(row) for Xs, _, order, _ in source.segments(
        np.random.default_rng(0), shuffle, 10) for row in (Xs[order] if len(order) else Xs)]
    evaluated = [tuple(row) for Xb, _ in source.blocks(64) for row in Xb]
    return trained, evaluated


@pytest.mark.parametrize("kind", ["array", "stream"])
def test_random_validation_rows_partition_the_rows(files, kind):
    """split_random: n_val rows drawn anywhere in the file, the others trained on (every
    epoch, shuffled or not), none of either lost or seen twice; the same seed, the same
    rows; the targets' statistics over the training rows only."""
    from numba_dense.model.data.sources import ArraySource, StreamSource
    folder, X, y = files
    Y = y[:, None].copy()
    if kind == "array":
        source = ArraySource(X, Y, np.arange(1000.0))
    else:
        source = StreamSource(np.load(folder / "X.npy", mmap_mode="r"), y, ("X", "y"),
                              (np.float64, 1, "regression"), 128)
    train, val = source.split_random(200, np.random.default_rng(5))
    assert (train.n_rows, val.n_rows) == (800, 200)
    for shuffle in (True, False):
        trained, evaluated = _rows_of(train, shuffle)
        assert sorted(trained) == sorted(evaluated) and len(set(trained)) == 800
    held = _rows_of(val, False)[1]
    assert len(set(held)) == 200 and not set(held) & set(trained)
    assert sorted(held + trained) == sorted(map(tuple, X))
    index = {row: i for i, row in enumerate(map(tuple, X))}
    rows = sorted(index[r] for r in held)
    assert rows[0] < 500 and rows[-1] >= 800  # drawn from the whole file, not its end
    again = source.split_random(200, np.random.default_rng(5))[1]
    assert _rows_of(again, False)[1] == held
    targets = np.concatenate(list(train.target_blocks()))
    np.testing.assert_array_equal(np.sort(targets[:, 0]),
                                  np.sort(np.delete(y, rows)))
    if kind == "array":  # the weights follow their rows
        np.testing.assert_array_equal(val.sample_weight, rows)


def test_validation_seed_holds_out_random_rows_of_a_sorted_file(files):
    """A file sorted by its target: the last rows are its largest targets, a validation set
    unlike the rows trained on; validation_seed draws them from the whole file, and
    val_loss is the cost of exactly those rows."""
    folder, X, y = files
    order = np.argsort(y)
    Xs, ys = X[order], y[order]
    net = MLP([6, 4, 1], seed=0)
    h = net.fit(Xs, ys, epochs=1, validation_fraction=0.2, validation_seed=5)
    from numba_dense.model.data.sources import held_out_rows
    held = np.zeros(1000, bool)
    held[held_out_rows(1000, 200, np.random.default_rng(5))] = True
    assert h.val_loss[0] == pytest.approx(net.cost(Xs[held], ys[held]), rel=1e-5)
    assert held[:800].sum() > 100  # most held-out rows are not the last ones
    # streamed in chunks of any size, the same rows are held out
    np.save(folder / "Xs.npy", Xs)
    for chunk_rows in (64, 128, 1000):
        streamed = MLP([6, 4, 1], seed=0)
        hs = streamed.fit(folder / "Xs.npy", ys, epochs=1, validation_fraction=0.2,
                          validation_seed=5, chunk_rows=chunk_rows)
        assert hs.val_loss[0] == pytest.approx(streamed.cost(Xs[held], ys[held]), rel=1e-5)


def test_the_draw_does_not_depend_on_chunks(monkeypatch):
    from numba_dense.model.data import sources
    monkeypatch.setattr(sources, "DRAW_BLOCK_ROWS", 100)  # several blocks
    rows = sources.held_out_rows(1050, 300, np.random.default_rng(1))
    assert len(rows) == 300 and len(set(rows.tolist())) == 300
    assert (np.diff(rows) > 0).all() and rows[0] >= 0 and rows[-1] < 1050
    X = np.arange(1050.0)[:, None]
    array = sources.ArraySource(X, X.copy())
    for chunk in (7, 100, 1050):
        stream = sources.StreamSource(X, X[:, 0], ("X", "y"), (np.float64, 1, "regression"),
                                      chunk)
        held = np.concatenate([Xb[:, 0] for Xb, _ in
                               stream.split_random(300, np.random.default_rng(1))[1].blocks()])
        np.testing.assert_array_equal(held, rows)
    held = np.concatenate([Xb[:, 0] for Xb, _ in
                           array.split_random(300, np.random.default_rng(1))[1].blocks(64)])
    np.testing.assert_array_equal(held, rows)


def test_a_bad_value_deep_in_a_file_is_reported_and_nothing_changes(tmp_path):
    X = np.zeros((500, 3))
    X[437, 2] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.zeros(500))
    net = MLP([3, 2, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="X contains NaN at row 437, column 2"):
        net.fit(tmp_path / "X.npy", tmp_path / "y.npy", epochs=2, chunk_rows=100, shuffle=False)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "missing.npy", d / "y.npy"), "X: no such file"),
    (lambda d: (d / "notnpy.npy", d / "y.npy"), "X: cannot read"),
    (lambda d: (d / "X.npy", d / "y_short.npy"), "y has 999 rows but X has 1000"),
    (lambda d: (d / "X5.npy", d / "y.npy"), "X has 5 features (columns) but the network has 6"),
])
def test_bad_files_are_refused_before_training(files, make, message):
    folder, X, y = files
    (folder / "notnpy.npy").write_bytes(b"not a numpy file")
    np.save(folder / "y_short.npy", y[:999])
    np.save(folder / "X5.npy", X[:, :5])
    net = MLP([6, 4, 1], seed=0)
    before = net.params.copy()
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        net.fit(*make(folder), epochs=1)
    assert message in str(info.value)
    np.testing.assert_array_equal(net.params, before)


def test_release_pages_drops_resident_file_pages(tmp_path):
    np.save(tmp_path / "big.npy", np.ones((4096, 1024), np.float32))  # 16 MiB
    X = np.load(tmp_path / "big.npy", mmap_mode="r")

    def resident_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))
    before = resident_kib()
    assert float(X.sum()) == 4096 * 1024
    touched = resident_kib()
    release_pages(X, 0, X.shape[0])
    assert touched - before > 12 * 1024
    assert resident_kib() - before < 2 * 1024
    assert float(X[:10].sum()) == 10 * 1024  # the data is still there


_TRAIN_BIG = """
import sys, numpy as np
from numba_dense.model import MLP

def peak_mb():  # VmHWM: this process's own high-water mark (ru_maxrss inherits the parent's)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024

def reset_peak():  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

path = sys.argv[1]
net = MLP([100, 16, 1], seed=0)
net.fit(np.zeros((256, 100), np.float32), np.zeros(256, np.float32), epochs=1)  # compile
reset_peak()
base = peak_mb()
h = net.fit(path + "/X.npy", path + "/y.npy", epochs=1, batch_size=256, chunk_rows=40000)
trained = peak_mb()
# Control: reading the memmap without releasing its pages does show up, so the
# measurement above can see growth.
X = np.load(path + "/X.npy", mmap_mode="r")
total = sum(float(X[a:a + 100000].sum()) for a in range(0, X.shape[0], 100000))
print(base, trained, peak_mb(), h.loss[0])
"""


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    """A 400 MB file trains with well under 100 MB of extra resident memory."""
    rows, cols = 1_000_000, 100
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, (rows, cols))
    y = np.lib.format.open_memmap(tmp_path / "y.npy", "w+", np.float32, (rows,))
    rng = np.random.default_rng(0)
    for a in range(0, rows, 100_000):
        X[a:a + 100_000] = rng.standard_normal((100_000, cols), dtype=np.float32) * 0.1
        y[a:a + 100_000] = X[a:a + 100_000, 0]
    X.flush()
    y.flush()
    del X, y
    file_mb = os.path.getsize(tmp_path / "X.npy") / 2**20
    bound_mb = 100
    out = subprocess.run([sys.executable, "-c", _TRAIN_BIG, str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    base, trained, control, loss = map(float, out.stdout.split())
    assert file_mb > 3.5 * bound_mb
    assert trained - base < bound_mb, "peak RSS grew by %.0f MB on a %.0f MB file" % (
        trained - base, file_mb)
    assert control - base > 0.8 * file_mb  # the instrument does see a file read in whole
    assert np.isfinite(loss)


_KILLABLE = """
import sys, numpy as np
from numba_dense.model import MLP
folder, checkpoint, out = sys.argv[1:4]
net = MLP([32, 64, 64, 1], seed=0)
net.fit(folder + "/X.npy", folder + "/y.npy", epochs=8, batch_size=32, lr=0.01, momentum=0.9,
        seed=5, schedule="cosine", checkpoint=checkpoint or None, resume=bool(checkpoint),
        chunk_rows=4096, verbose=True)
np.save(out, net.params)
"""


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 32), dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.tanh(X[:, :3].sum(axis=1)))
    ck = str(tmp_path / "ck.npz")

    def launch(checkpoint, out):
        return subprocess.Popen([sys.executable, "-c", _KILLABLE, str(tmp_path), checkpoint,
                                 str(tmp_path / out)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    victim = launch(ck, "killed.npy")
    lines = []
    for line in victim.stdout:  # wait until epoch 2 is reported
        lines.append(line)
        if line.startswith("epoch 2/8"):
            break
    seconds = epoch_seconds(line)

    def checkpointed_epoch():  # the file is replaced by a rename: never read half written
        try:
            with np.load(ck) as f:
                return int(f["epoch"])
        except FileNotFoundError:
            return 0
    deadline = time.monotonic() + 120
    while checkpointed_epoch() < 2:  # the line comes just before the checkpoint is written
        assert time.monotonic() < deadline and victim.poll() is None, "no checkpoint of epoch 2"
        time.sleep(0.01)
    time.sleep(seconds / 2)  # half way through epoch 3
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(lines) + victim.stderr.read()
    with np.load(ck) as f:
        killed_after = int(f["epoch"])
    assert 2 <= killed_after < 8
    assert not (tmp_path / "killed.npy").exists()

    resumed = launch(ck, "resumed.npy")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "resuming from" in out
    straight = launch("", "straight.npy")
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npy"),
                                  np.load(tmp_path / "straight.npy"))
