"""Nothing lost, no traceback: outputs checked first, Ctrl-C keeps the work, clear errors.

These run the command line the way users meet it: subprocesses, real files, real signals.
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.interfaces.cli import main

from .conftest import epoch_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--rows", "2000", "--hidden-sizes", "8", "--epochs", "1"]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "numba_dense", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env=env)


def _one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- outputs first

@pytest.mark.parametrize("option", ["--save", "--checkpoint", "--plot"])
def test_output_in_a_missing_folder_is_refused_before_training(tmp_path, option):
    target = str(tmp_path / "nodir" / ("out.png" if option == "--plot" else "out.npz"))
    result = _cli("train", *SMALL, option, target)
    _one_line_error(result, option, "does not exist")
    assert "epoch" not in result.stdout  # refused before any training


def test_output_that_is_a_folder_is_refused_before_training(tmp_path):
    result = _cli("train", *SMALL, "--save", str(tmp_path))
    _one_line_error(result, "--save", "is a folder")
    assert "epoch" not in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_output_in_an_unwritable_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    result = _cli("train", *SMALL, "--save", str(folder / "net.npz"))
    _one_line_error(result, "--save", "not writable")


def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys):
    path = str(tmp_path / "same.npz")
    assert main(["train", *SMALL, "--save", path, "--checkpoint", path]) == 2
    assert "--save and --checkpoint name the same file" in capsys.readouterr().err


def test_convert_never_overwrites_its_input_or_one_output_with_the_other(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n1,2,3\n4,5,6\n")
    before = csv.read_bytes()
    _one_line_error(_cli("convert", str(csv), "--target-col", "y", "--out-x", str(csv),
                         "--out-y", str(tmp_path / "y.npy")), "--out-x", "overwritten")
    assert csv.read_bytes() == before
    same = str(tmp_path / "same.npy")
    _one_line_error(_cli("convert", str(csv), "--target-col", "y", "--out-x", same,
                         "--out-y", same), "same file")
    assert not os.path.exists(same)


def test_predict_checks_its_output_before_loading_anything(tmp_path):
    _one_line_error(_cli("predict", "--model", str(tmp_path / "none.npz"), "--data",
                         str(tmp_path / "none.npy"), "--out", str(tmp_path / "p.txt")),
                    "--out must end in .npy or .csv")


# ----------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_saves_the_parameters_so_far_and_exits_130(tmp_path):
    save, ckpt = tmp_path / "net.npz", tmp_path / "run.ckpt.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "numba_dense", "train", "--rows", "400000", "--epochs", "50",
         "--hidden-sizes", "64,64", "--save", str(save), "--checkpoint", str(ckpt)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:  # wait for epoch 2 to start: epoch 1's line, then half an epoch
        lines.append(line)
        if line.startswith("epoch 1/50"):
            break
    time.sleep(epoch_seconds(line) / 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    # A busy or fast machine may let the signal land in a later epoch: the message, the saved
    # history and the checkpoint must agree on whichever epoch it was.
    found = re.search(r"interrupted in epoch (\d+) after (\d+) rows", err)
    assert found, err
    epoch = int(found.group(1))
    assert 2 <= epoch <= 50
    net = MLP.load(save)
    assert net.history.interrupted_epoch == epoch and len(net.history.loss) == epoch - 1
    assert f"holds the {epoch - 1} whole epoch" in err
    resumed = MLP.load(ckpt)  # the checkpoint holds the whole epochs before the cut
    rows = int(found.group(2))  # exact: the parameters moved if and only if rows were trained
    assert 0 <= rows < 400_000 * 0.9
    assert np.array_equal(resumed.params, net.params) == (rows == 0), err


def test_ctrl_c_in_python_raises_keyboard_interrupt_with_the_history(monkeypatch):
    from numba_dense.model.training import loop, signals
    calls = []
    real = loop.train_one_epoch

    def interrupt_in_epoch_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "train_one_epoch", interrupt_in_epoch_3)
    X = np.random.default_rng(0).standard_normal((200, 3))
    net = MLP([3, 4, 1], seed=0)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, X[:, 0], epochs=5)
    assert isinstance(info.value, signals.TrainingInterrupted) and info.value.epoch == 3
    from numba_dense import model
    assert model.TrainingInterrupted is signals.TrainingInterrupted
    assert net.history.interrupted_epoch == 3 and len(net.history.loss) == 2


# ----------------------------------------------------------------------------- clear errors

def test_corrupt_archives_are_one_line_errors_in_every_command(tmp_path):
    good = tmp_path / "d.npz"
    X = np.random.default_rng(0).standard_normal((50, 3))
    np.savez(good, X=X, y=X[:, 0])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:300])
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    MLP([3, 4, 1]).save(tmp_path / "m.npz")
    for data in (bad, tmp_path / "flip.npz"):
        _one_line_error(_cli("train", "--data", str(data), "--epochs", "1"), str(data))
        _one_line_error(_cli("evaluate", "--model", str(tmp_path / "m.npz"), "--data",
                             str(data)), str(data))
        _one_line_error(_cli("predict", "--model", str(tmp_path / "m.npz"), "--data",
                             str(data), "--out", str(tmp_path / "p.npy")), str(data))


def test_text_renamed_npy_a_folder_and_a_truncated_npy_say_what_they_are(tmp_path):
    text = tmp_path / "X.npy"
    text.write_text("a,b\n1,2\n")
    line = _one_line_error(_cli("train", "--data", str(text), "--target", str(text)),
                           "not a .npy file", str(text))
    assert "allow_pickle" not in line
    _one_line_error(_cli("train", "--data", str(tmp_path)), "is a folder")
    np.save(tmp_path / "full.npy", np.zeros((100, 10)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:2000])
    _one_line_error(_cli("train", "--data", str(tmp_path / "cut.npy"), "--target",
                         str(tmp_path / "full.npy")), "truncated", "cut.npy")


def test_a_network_too_large_for_memory_is_one_line(tmp_path):
    _one_line_error(_cli("train", "--rows", "100", "--hidden-sizes", "1000000,1000000"),
                    "out of memory", "GB", "narrower")


@pytest.mark.parametrize("args,message", [
    (["--seed", "-1"], "--seed: must be at least 0"),
    (["--rows", "-5"], "--rows: must be at least 1"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
])
def test_negative_counts_are_refused_by_name(args, message):
    result = _cli("train", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_load_of_a_plain_npy_is_a_value_error(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="single .npy array"):
        MLP.load(tmp_path / "X.npy")


def test_huge_batch_size_on_a_streamed_file_is_clamped(tmp_path):
    X = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X[:, 0])
    result = _cli("train", "--data", str(tmp_path / "X.npy"), "--target",
                  str(tmp_path / "y.npy"), "--batch-size", "10000000000000", "--epochs", "1",
                  "--hidden-sizes", "4")
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path, capsys):
    csv = tmp_path / "excel.csv"
    csv.write_bytes(b"\xef\xbb\xbff0,f1,y\n1,2,3\n4,5,6\n7,8,9\n")
    assert main(["convert", str(csv), "--target-col", "y", "--out-x", str(tmp_path / "X.npy"),
                 "--out-y", str(tmp_path / "y.npy")]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    from numba_dense.model.data.convert import csv_to_npy
    result = csv_to_npy(csv, tmp_path / "X2.npy", tmp_path / "y2.npy", ["y"])
    assert result.features == ["f0", "f1"]


# ----------------------------------------------------------------------------- papercuts

def test_saved_and_converted_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        MLP([3, 4, 1]).save(tmp_path / "m.npz")
        csv = tmp_path / "d.csv"
        csv.write_text("a,y\n1,2\n")
        main(["convert", str(csv), "--target-col", "y", "--out-x", str(tmp_path / "X.npy"),
              "--out-y", str(tmp_path / "y.npy")])
    finally:
        os.umask(old)
    for name in ("m.npz", "X.npy", "y.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_first_run_says_it_is_compiling_and_keeps_it_out_of_epoch_1(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    result = _cli("train", *SMALL, "--epochs", "2", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    compiling = [i for i, l in enumerate(lines) if l.startswith("compiling kernels")]
    first = [i for i, l in enumerate(lines) if l.startswith("epoch 1/2")]
    assert compiling and first and compiling[0] < first[0]


def test_the_compiling_notice_prints_once_and_only_while_numba_compiles(monkeypatch, capsys):
    """The line follows Numba's compile events: printed once however many compilations
    (and nested blocks) follow, never for a block that compiles nothing, and not at all
    without verbose."""
    from numba import njit
    from numba_dense.model.training import loop
    monkeypatch.setattr(loop, "NOTICE_AFTER_SECONDS", 0.0)

    def fresh():
        @njit
        def add_one(x):
            return x + 1
        return add_one

    with loop.compiling_notice(True):
        with loop.compiling_notice(True):
            fresh()(1)
        fresh()(2.5)
        time.sleep(0.2)  # the timer's thread prints
    assert capsys.readouterr().out.count("compiling kernels") == 1
    compiled = fresh()
    compiled(1)
    with loop.compiling_notice(True):
        compiled(2)  # compiled already: no compile event
        time.sleep(0.2)
    with loop.compiling_notice(False):
        fresh()(3)
        time.sleep(0.2)
    assert "compiling" not in capsys.readouterr().out


def test_a_compiling_counter_moves_with_each_function_compiled(monkeypatch, capsys):
    """With a progress bar wanted, the notice is followed by a counter on stderr that goes
    up as Numba finishes each function (nested ones too) and is gone when the outermost
    compilation ends; without one (and by default off a terminal), stderr stays empty."""
    from numba import njit
    from numba_dense.model.training import loop
    monkeypatch.setattr(loop, "NOTICE_AFTER_SECONDS", 0.0)

    def nested():
        @njit
        def inner(x):
            return x * 2

        @njit
        def outer(x):
            # slow enough to compile that the notice's timer thread fires meanwhile
            return inner(x) + inner(x + 1)
        return outer

    with loop.compiling_notice(True, True):
        time.sleep(0)  # nothing compiled yet: no line, no counter
        assert capsys.readouterr().err == ""
        nested()(1)
        nested()(2.5)
    captured = capsys.readouterr()
    assert captured.out.count("compiling kernels") == 1
    counts = [int(n) for n in re.findall(r"compiling: (\d+) functions", captured.err)]
    assert counts and counts == sorted(counts) and counts[-1] >= 2, captured.err
    with loop.compiling_notice(True, False):
        nested()(3)
    with loop.compiling_notice(True):  # None: only on a terminal, which capsys is not
        nested()(4)
    assert capsys.readouterr().err == ""


def _record_calls(monkeypatch, events, **labels):
    """Replace each ``model.training.loop`` function named in ``labels`` by one that appends
    its label to ``events`` and calls the original."""
    from numba_dense.model.training import loop
    for name, label in labels.items():
        real = getattr(loop, name)
        monkeypatch.setattr(loop, name,
                            lambda *a, real=real, label=label: events.append(label) or real(*a))


def test_kernels_are_compiled_before_the_first_epoch_is_timed(monkeypatch):
    events = []
    _record_calls(monkeypatch, events, compile_kernels="compile", _train_epoch="epoch")
    X = np.random.default_rng(0).standard_normal((100, 3))
    MLP([3, 4, 1]).fit(X, X[:, 0], epochs=2)
    assert events == ["compile", "epoch", "epoch"]


@pytest.mark.parametrize("validation", [0.0, 0.2])
def test_the_validation_cost_kernel_is_compiled_before_the_first_epoch(
        monkeypatch, validation):
    """On a first run it compiles for seconds: under the compiling notice, not in silence
    between the first epoch and its line; and not at all without validation rows."""
    events = []
    _record_calls(monkeypatch, events, compile_cost_kernel="cost", _train_epoch="epoch")
    X = np.random.default_rng(0).standard_normal((100, 3))
    MLP([3, 4, 1]).fit(X, X[:, 0], epochs=2, validation_fraction=validation)
    assert events == (["cost"] if validation else []) + ["epoch", "epoch"]


def test_the_compiling_notice_says_why_after_a_tune(monkeypatch):
    """The first run with a tuning file compiles again, into a folder of its own: the
    notice names the file rather than claim a first run of the package."""
    from numba_dense.model.training import loop
    assert "first run only" in loop._compiling_message()
    monkeypatch.setattr(loop.kernels.config, "TUNING_FILE", "/x/dispatch.json")
    # a file of SPLIT_MIN_MACS_<k> alone (written on first use) compiles nothing anew
    assert "first run only" in loop._compiling_message()
    monkeypatch.setattr(loop.kernels.config, "FORWARD_TILED_MAX_MACS", 12345)
    assert "tuned on this CPU (/x/dispatch.json)" in loop._compiling_message()


def test_unwritable_folder_is_refused_by_the_check_itself(tmp_path, monkeypatch):
    """As root every folder is writable, so the check is also exercised with os.access."""
    from numba_dense.model.data import paths
    monkeypatch.setattr(paths.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="--save: folder .* is not writable"):
        paths.check_output(str(tmp_path / "net.npz"), "--save")


def test_a_pickled_npy_is_refused_naming_the_file(tmp_path):
    from numba_dense.model.data import sources as data
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy.*pickled Python objects"):
        data.open_array(str(path), "X")


def test_samples_per_second_counts_every_rank_under_mpi(capsys):
    """The epoch line divides the rows of all ranks (ranks.global_rows) by the time."""
    from numba_dense.model.data import sources as data
    from numba_dense.model.training import loop
    from numba_dense.model.training import options as fit_options

    class TwoRanks(loop.OneProcess):
        global_rows = 2000  # this rank's 1000 rows and another rank's 1000

        def prepare(self, net, source, settings, verbose):
            pass

        def epoch(self, net, source, rng, lr, settings, bar):
            time.sleep(0.05)
            return 0.5
    net = MLP([3, 1], seed=0)
    X = np.zeros((1000, 3), np.float32)
    source = data.ArraySource(X, np.zeros((1000, 1), np.float32))
    settings = fit_options.Settings(epochs=1, batch_size=10, lr=0.1, schedule="constant",
                                    step_size=1, gamma=0.1, min_lr=0.0, shuffle=False,
                                    seed=0, early_stopping=None)
    loop.run(net, source, None, settings, fit_options.RunOptions(verbose=True), TwoRanks())
    line = capsys.readouterr().out.strip().splitlines()[-1]
    seconds = float(line.split()[-3].rstrip("s"))
    rate = float(line.split()[-2])
    assert rate * seconds == pytest.approx(2000, rel=0.25)
