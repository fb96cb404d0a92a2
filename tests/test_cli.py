"""The command line: train, predict, evaluate, convert; --help; one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.interfaces.cli import main
from numba_dense.model.data.convert import CSVFormatError, csv_to_npy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "numba_dense", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    with open(folder / "d.csv", "w") as f:
        f.write("a,b,c,label\n")
        for x, l in zip(X, labels):
            f.write("%.6f,%.6f,%.6f,%d\n" % (*x, l))
    return folder, X, labels


def test_train_on_npz_and_save(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    np.savez(tmp_path / "d.npz", X=X, y=X @ [1.0, -2.0, 0.5, 0.0])
    result = _cli("train", "--data", str(tmp_path / "d.npz"), "--hidden-sizes", "8",
                  "--epochs", "2", "--save", str(tmp_path / "net.npz"))
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2  loss" in result.stdout and "val_loss" in result.stdout
    assert MLP.load(tmp_path / "net.npz").layer_sizes == [4, 8, 1]


def test_train_classifier_from_csv_then_evaluate_and_predict(csv_file, tmp_path, capsys):
    folder, X, labels = csv_file
    model = str(tmp_path / "m.npz")
    assert main(["train", "--data", str(folder / "d.csv"), "--target-col", "label",
                 "--output", "softmax", "--hidden-sizes", "16", "--epochs", "6", "--lr", "0.05",
                 "--schedule", "cosine", "--early-stopping", "3", "--save", model]) == 0
    out = capsys.readouterr().out
    assert "output='softmax', loss='cross_entropy'" in out and "lr " in out
    assert main(["evaluate", "--model", model, "--data", str(folder / "d.csv"),
                 "--target-col", "label"]) == 0
    lines = capsys.readouterr().out.splitlines()
    accuracy = float(lines[-1].split()[1])
    assert lines[-1].startswith("accuracy") and accuracy > 0.8
    assert main(["predict", "--model", model, "--data", str(folder / "d.csv"),
                 "--target-col", "label", "--out", str(tmp_path / "p.npy")]) == 0
    pred = np.load(tmp_path / "p.npy")
    assert pred.shape == (600,) and (pred == labels).mean() == pytest.approx(accuracy)
    assert main(["predict", "--model", model, "--data", str(folder / "d.csv"),
                 "--target-col", "label", "--out", str(tmp_path / "p.csv"), "--proba"]) == 0
    proba = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert proba.shape == (600, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


def test_train_on_npy_pair_with_checkpoint_and_resume(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X[:, 0] - X[:, 1])
    args = ["train", "--data", str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy"),
            "--hidden-sizes", "8", "--checkpoint", str(tmp_path / "ck.npz"), "--resume",
            "--save", str(tmp_path / "m.npz")]
    assert main(args + ["--epochs", "2"]) == 0
    assert main(args + ["--epochs", "4"]) == 0  # carries on from epoch 2
    out = capsys.readouterr().out
    assert "resuming from" in out and "epoch 4/4" in out and "epoch 1/4" not in out
    assert main(["evaluate", "--model", str(tmp_path / "m.npz"), "--data",
                 str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("r2 ")


def test_plot_writes_a_png_or_says_what_is_missing(tmp_path, capsys):
    code = main(["train", "--rows", "2000", "--epochs", "2", "--plot", str(tmp_path / "c.png")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == 2
        assert "--plot needs matplotlib" in capsys.readouterr().err
        return
    assert code == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    code = main(["train", "--rows", "500", "--epochs", "1", "--plot", str(tmp_path / "c.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --plot needs matplotlib") and "numba-dense[plot]" in err
    assert not (tmp_path / "c.png").exists()


def test_convert_command(csv_file, tmp_path, capsys):
    folder, X, labels = csv_file
    assert main(["convert", str(folder / "d.csv"), "--target-col", "label", "--out-x",
                 str(tmp_path / "X.npy"), "--out-y", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "X.npy"), X, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy")[:, 0], labels)


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "convert"])
def test_every_command_has_help(command):
    result = _cli(command, "--help")
    assert result.returncode == 0 and result.stdout.startswith(
        "usage: python -m numba_dense " + command)


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "/no/such.npz"], "error: --data: no such file"),
    (["train", "--rows", "100", "--lr", "-1", "--epochs", "1"], "error: --lr must be > 0.0"),
    (["train", "--rows", "100", "--hidden", "softsign"],
     "error: argument --hidden: 'softsign' is not an activation (one of identity, relu"),
    (["train", "--rows", "100", "--epochs", "x"],
     "error: argument --epochs: expected an integer, got 'x'"),
    (["train", "--data", "README.md"],
     "error: --data must be a .npz, .npy, .csv (.csv.gz, .csv.bz2) or .parquet file"),
    (["train", "--data", "tests/data/bad.npz"], "error: --data: cannot read"),
    (["predict", "--model", "/no/model.npz", "--data", "x.npy", "--out", "p.npy"],
     "error: --model: no such file"),
    (["frobnicate"], "error: argument COMMAND: invalid choice"),
    # an activation for no hidden layer was ignored; a missing level found after the data
    (["train", "--rows", "100", "--hidden-sizes", "", "--hidden", "gelu"],
     "error: --hidden applies to a network with hidden layers (--hidden-sizes) only"),
    (["train", "--rows", "100", "--loss", "quantile"],
     "error: --loss quantile needs --quantile Q, its level in (0, 1)"),
    # gelu and silu are hidden activations only: --output offers what can be trained
    (["train", "--rows", "100", "--output", "gelu"],
     "error: argument --output: invalid choice: 'gelu' (choose from 'identity', 'relu', "
     "'tanh', 'sigmoid', 'leaky_relu', 'softmax', 'exp')"),
])
def test_errors_are_one_line_without_traceback(args, message):
    os.makedirs(os.path.join(ROOT, "tests", "data"), exist_ok=True)
    result = _cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_shapes_on_the_command_line(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((10, 3)))
    np.save(tmp_path / "y.npy", np.zeros(9))
    result = _cli("train", "--data", str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy"))
    assert result.returncode == 2
    assert result.stderr == "error: y has 9 rows but X has 10\n"


# ----------------------------------------------------------------------------- converter

def _write(path, text):
    path.write_text(text)
    return path


def test_converter_reports_bad_rows_by_line(tmp_path):
    csv = _write(tmp_path / "bad.csv", "x1,x2,y\n1,2,3\n4,5\n6,seven,8\n\n9,10,nan\n11,12,13\n")
    with pytest.raises(CSVFormatError) as info:
        csv_to_npy(csv, tmp_path / "X.npy", tmp_path / "y.npy", "y")
    assert info.value.bad_lines == [(3, "expected 3 fields, got 2"),
                                    (4, "field 'seven' is not a number"),
                                    (6, "holds NaN or inf")]
    assert "has 3 bad rows (nothing written): line 3" in str(info.value)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".tmp-*"))
    result = csv_to_npy(csv, tmp_path / "X.npy", tmp_path / "y.npy", ["y"], skip_bad=True,
                        chunk_rows=2)
    assert (result.rows, result.n_bad, result.features, result.targets) == (2, 3, ["x1", "x2"],
                                                                            ["y"])
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1, 2], [11, 12]])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [[3], [13]])


def test_converter_in_chunks_matches_loadtxt(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((1234, 5))
    np.savetxt(tmp_path / "d.csv", data, delimiter=",", header="a,b,c,d,e", comments="")
    result = csv_to_npy(tmp_path / "d.csv", tmp_path / "X.npy", tmp_path / "y.npy", [1, "e"],
                        dtype=np.float64, chunk_rows=100)
    assert result.rows == 1234 and result.targets == ["b", "e"]
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), data[:, [0, 2, 3]])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), data[:, [1, 4]])


@pytest.mark.parametrize("targets, message", [
    ("z", "target column 'z' is not in the header"),
    (7, "target column 7 is out of range"),
    (["x1", "x2", "y"], "every column of"),
    (["y", 2], "name the same column twice"),
])
def test_converter_refuses_bad_target_columns(tmp_path, targets, message):
    csv = _write(tmp_path / "d.csv", "x1,x2,y\n1,2,3\n")
    with pytest.raises(ValueError, match=message):
        csv_to_npy(csv, tmp_path / "X.npy", tmp_path / "y.npy", targets)


def test_convert_command_skip_bad_lists_lines(tmp_path):
    csv = _write(tmp_path / "bad.csv", "x1,x2,y\n1,2,3\n4,5\n")
    result = _cli("convert", str(csv), "--target-col", "y", "--out-x", str(tmp_path / "X.npy"),
                  "--out-y", str(tmp_path / "y.npy"), "--skip-bad")
    assert result.returncode == 0
    assert result.stderr == "skipped line 3: expected 3 fields, got 2\n"
    result = _cli("convert", str(csv), "--target-col", "y", "--out-x", str(tmp_path / "X.npy"),
                  "--out-y", str(tmp_path / "y.npy"))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: convert: ") and "line 3: expected 3 fields" in result.stderr
