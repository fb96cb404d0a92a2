"""Dispatch measured on the host (issue 23): ``tune`` writes a file per CPU and versions,
later processes load it (and compile into a cache folder of their own), a bad file falls
back to the packaged values with one line on stderr.

Every process here gets ``XDG_CACHE_HOME`` and ``NUMBA_CACHE_DIR`` under pytest's temporary
folders: the user's own cache is never read or written.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from numba_dense.kernels import config, host, tuning

#: A grid of two shapes and a budget of a fraction of a second: the tests check the
#: machinery, not the crossovers.
TINY = ["--batches", "8", "--widths", "1,24", "--budget", "0.2"]

#: Prints the values in force, the cache folder the kernels compile into and a compiled
#: function's reading of FORWARD_TILED_MAX_MACS: the scratch size is 0 above it.
SHOW = """
from numba.core import config as numba_config
from numba_dense.kernels import _cache, config, products
print(config.FORWARD_LOOP_MAX_OUTPUTS, config.FORWARD_TILED_MAX_MACS, config.TUNING_FILE)
print(numba_config.CACHE_DIR)
print(products.forward_scratch_size(1, 2048, 1024))
print(products.forward_scratch_size.stats.cache_hits.get(
    products.forward_scratch_size.signatures[0], 0))
"""


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory):
    """One Numba cache folder for the module's processes: each compiles once."""
    return tmp_path_factory.mktemp("numba-cache")


def _env(xdg, numba_cache, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", host.TUNING_ENV,
                        "NUMBA_DENSE_CACHE_BASE")}
    env.update(XDG_CACHE_HOME=str(xdg), NUMBA_CACHE_DIR=str(numba_cache), **extra)
    return env


def _python(args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def _show(env, cwd):
    result = _python(["-c", SHOW], env, cwd)
    assert result.returncode == 0, result.stderr
    first, cache_dir, scratch, hits = result.stdout.splitlines()
    loop, tiled, source = first.split(" ", 2)
    return (int(loop), int(tiled), source), cache_dir, int(scratch), int(hits), result.stderr


def _record(**values):
    """A valid tuning file's contents for this CPU and these versions."""
    return {"format": host.TUNING_FORMAT, "cpu_model": host.cpu_key(),
            "vector_bytes": config.VECTOR_BYTES,
            "cpu_flags": host.cpu_flags(), "versions": host.library_versions(),
            "date": "2026-11-30T12:00:00+00:00", "values": values, "grid": {}}


def _tuning_path(xdg):
    """Where a process with ``XDG_CACHE_HOME=xdg`` looks for this host's file."""
    name = os.path.basename(host.tuning_file(config.VECTOR_BYTES))
    return os.path.join(str(xdg), "numba_dense", name)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_a_quick_tune_writes_a_valid_file_that_later_processes_use(tmp_path, numba_cache):
    env = _env(tmp_path, numba_cache)
    result = _python(["-m", "numba_dense.kernels", "tune", *TINY], env, tmp_path)
    assert result.returncode == 0, result.stderr
    path = _tuning_path(tmp_path)
    assert "wrote %s" % path in result.stdout
    assert "FORWARD_LOOP_MAX_OUTPUTS" in result.stdout and "->" in result.stdout
    folder = os.path.dirname(path)
    assert os.listdir(folder) == [os.path.basename(path)]  # no temporary file left
    with open(path) as f:
        record = json.load(f)
    assert record["cpu_model"] == host.cpu_key()
    assert record["vector_bytes"] == config.VECTOR_BYTES
    assert record["versions"] == host.library_versions()
    assert set(record["cpu_flags"]) == {"avx2", "avx512f"} and record["date"]
    assert config.check_tuning(record, host.cpu_key(), host.library_versions(),
                               config.VECTOR_BYTES) \
        == record["values"]
    # the dispatch crossovers, and the thread crossovers of the counts this host can run
    assert set(config.TUNABLE) - set(config.RUNTIME_TUNABLE) <= set(record["values"])
    assert "SPLIT_MIN_MACS_2" in record["values"] and set(record["values"]) <= set(config.TUNABLE)
    assert record["grid"]["batches"] == [8] and len(record["grid"]["rows"]) == 3 * 4
    # a later process has these values in force, and info names the file
    result = _python(["-m", "numba_dense.kernels", "info", "--no-rate"], env, tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "tuning file: %s" % path in result.stdout
    for name, value in record["values"].items():
        assert "%-26s %10d  tuning file" % (name, value) in result.stdout
    assert "SINGLE_THREAD_MAX_MACS" in result.stdout and "packaged" in result.stdout
    assert "CPU: %s" % host.cpu_model() in result.stdout and "-byte vectors" in result.stdout


def test_the_main_command_line_tunes_too(tmp_path, numba_cache):
    path = tmp_path / "mine.json"
    env = _env(tmp_path / "xdg", numba_cache, NUMBA_DENSE_TUNING=str(path))
    result = _python(["-m", "numba_dense", "tune", *TINY], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote %s" % path in result.stdout and path.exists()
    assert not (tmp_path / "xdg").exists()  # NUMBA_DENSE_TUNING named the file
    (values, _, _, _, stderr) = _show(env, tmp_path)
    assert values[2] == str(path) and stderr == ""


def test_code_compiled_with_packaged_values_is_never_reused_with_tuned_ones(
        tmp_path, numba_cache):
    """Numba freezes the values into compiled code and its cache key ignores them: tuned
    values must compile into a folder of their own (kernels._cache)."""
    env = _env(tmp_path, numba_cache)
    packaged = config.PACKAGED["FORWARD_TILED_MAX_MACS"]
    assert 1 * 2048 * 1024 > packaged  # the scratch size below is 0 with the packaged values
    values, cache_dir, scratch, _, stderr = _show(env, tmp_path)
    assert values == (config.PACKAGED["FORWARD_LOOP_MAX_OUTPUTS"], packaged, "None")
    assert cache_dir == str(numba_cache) and scratch == 0 and stderr == ""
    values, cache_dir, scratch, hits, _ = _show(env, tmp_path)
    assert hits == 1  # the packaged values' code is cached ...

    path = _tuning_path(tmp_path)  # ... then a tune file appears
    _write(path, json.dumps(_record(FORWARD_LOOP_MAX_OUTPUTS=9, FORWARD_TILED_MAX_MACS=1 << 22)))
    values, cache_dir, scratch, hits, stderr = _show(env, tmp_path)
    assert values == (9, 1 << 22, path) and stderr == ""
    assert os.path.dirname(cache_dir) == str(numba_cache)
    assert os.path.basename(cache_dir).startswith("numba_dense-tuned-")
    assert scratch == 2048 * 1024 and hits == 0  # compiled afresh, with the tuned value
    assert _show(env, tmp_path)[2:4] == (2048 * 1024, 1)  # and cached in its own folder

    # a child of a tuned process that turns the tuning off starts from the user's folder
    child = ("import os, subprocess, sys\n"
             "from numba_dense.kernels import config\n"
             "env = dict(os.environ, NUMBA_DENSE_TUNING='off')\n"
             "sys.exit(subprocess.run([sys.executable, '-c', %r], env=env).returncode)\n"
             % SHOW)
    result = _python(["-c", child], env, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "%d %d None" % (config.PACKAGED["FORWARD_LOOP_MAX_OUTPUTS"], packaged)
    assert lines[1:4] == [str(numba_cache), "0", "1"]

    # the same values without NUMBA_CACHE_DIR: a folder beside the tuning file
    env.pop("NUMBA_CACHE_DIR")
    _, cache_dir, scratch, _, _ = _show(env, tmp_path)
    assert os.path.dirname(cache_dir) == os.path.dirname(path) and scratch == 2048 * 1024


@pytest.mark.parametrize("case", ["not json", "another CPU", "out of range", "unknown name"])
def test_a_bad_tuning_file_falls_back_to_the_packaged_values_with_one_line(
        tmp_path, numba_cache, case):
    record = _record(FORWARD_LOOP_MAX_OUTPUTS=9)
    text = {
        "not json": '{"format": 1, "values": {',
        "another CPU": json.dumps(dict(record, cpu_model="Some Other CPU 9000")),
        "out of range": json.dumps(_record(GRADIENT_TILED_MAX_MACS=-5)),
        "unknown name": json.dumps(_record(TILE_ROWS=8)),
    }[case]
    path = _tuning_path(tmp_path)
    _write(path, text)
    values, cache_dir, scratch, _, stderr = _show(_env(tmp_path, numba_cache), tmp_path)
    assert values == (config.PACKAGED["FORWARD_LOOP_MAX_OUTPUTS"],
                      config.PACKAGED["FORWARD_TILED_MAX_MACS"], "None")
    assert cache_dir == str(numba_cache) and scratch == 0
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kernels: ignoring the tuning file %s: " % path)
    assert "packaged" in lines[0]
    detail = {"not json": "not valid JSON", "another CPU": "Some Other CPU 9000",
              "out of range": "GRADIENT_TILED_MAX_MACS must be an integer in [0, ",
              "unknown name": "'TILE_ROWS'"}[case]
    assert detail in lines[0]


def test_tuning_off_ignores_the_file_and_a_named_missing_file_is_one_line(
        tmp_path, numba_cache):
    path = _tuning_path(tmp_path)
    _write(path, json.dumps(_record(FORWARD_LOOP_MAX_OUTPUTS=9)))
    code = "from numba_dense.kernels import config; print(config.FORWARD_LOOP_MAX_OUTPUTS)"
    for value in ("off", "0"):
        result = _python(["-c", code], _env(tmp_path, numba_cache, NUMBA_DENSE_TUNING=value),
                         tmp_path)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert result.stdout.split() == [str(config.PACKAGED["FORWARD_LOOP_MAX_OUTPUTS"])]
    result = _python(["-c", code], _env(tmp_path, numba_cache), tmp_path)
    assert result.stdout.split() == ["9"] and result.stderr == ""
    missing = str(tmp_path / "nowhere.json")
    result = _python(["-c", code], _env(tmp_path, numba_cache, NUMBA_DENSE_TUNING=missing),
                     tmp_path)
    assert result.returncode == 0
    assert result.stdout.split() == [str(config.PACKAGED["FORWARD_LOOP_MAX_OUTPUTS"])]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "NUMBA_DENSE_TUNING" in lines[0] and "packaged" in lines[0]
    assert missing in lines[0]  # the line names the path it could not read


#: A grid the destination checks refuse before measuring anything.
FAST = ["--batches", "8", "--widths", "1,8", "--budget", "0.2"]


def test_an_unwritable_cache_folder_is_one_line_before_anything_is_measured(
        tmp_path, numba_cache):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [str(a_file)]
    if os.path.isdir("/sys/kernel"):  # sysfs refuses new folders, even to root
        cases.append("/sys/kernel")
    for xdg in cases:
        result = _python(["-m", "numba_dense", "tune", *FAST], _env(xdg, numba_cache),
                         tmp_path)
        assert result.returncode == 2 and result.stdout == "", result.stdout
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        folder = os.path.join(xdg, "numba_dense")
        assert "folder %s (from XDG_CACHE_HOME=%s)" % (folder, xdg) in lines[0]
        assert "NUMBA_DENSE_TUNING=PATH" in lines[0]


def test_a_named_file_in_a_missing_folder_is_refused_and_the_folder_not_made(
        tmp_path, numba_cache):
    folder = tmp_path / "missing"
    path = folder / "x.json"
    env = _env(tmp_path / "xdg", numba_cache, NUMBA_DENSE_TUNING=str(path))
    result = _python(["-m", "numba_dense", "tune", *FAST], env, tmp_path)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert "NUMBA_DENSE_TUNING=%s" % path in error[0]
    assert "folder %s does not exist" % folder in error[0]
    assert not folder.exists() and not (tmp_path / "xdg").exists()


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert host.cache_base() == (os.path.join(str(tmp_path), ".cache"), "~/.cache")
    assert host.cache_folder() == os.path.join(str(tmp_path), ".cache", "numba_dense")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert host.cache_base() == (str(tmp_path / "xdg"), "XDG_CACHE_HOME")


def test_a_value_at_the_top_of_the_grid_is_marked_in_the_table():
    values = dict(config.PACKAGED)
    lines = tuning.table(values, {"FORWARD_TILED_MAX_MACS"}, quick=True)
    marked = [line for line in lines if line.rstrip().endswith("*")]
    assert len(marked) == 1 and marked[0].startswith("FORWARD_TILED_MAX_MACS")
    assert "(2**" in marked[0]
    assert lines[-1].startswith("* at the top of the grid measured: the crossover may be "
                                "higher; a fuller tune (without --quick) measures further")
    assert not any(line.rstrip().endswith("*") for line in tuning.table(values))


def test_the_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "sub" / "dispatch.json")
    assert tuning.write_tuning(_record(FORWARD_LOOP_MAX_OUTPUTS=2), path) == path
    with pytest.raises(TypeError):  # fails half-way through json.dump
        tuning.write_tuning(_record(FORWARD_LOOP_MAX_OUTPUTS=object()), path)
    assert os.listdir(tmp_path / "sub") == ["dispatch.json"]
    with open(path) as f:
        assert json.load(f)["values"] == {"FORWARD_LOOP_MAX_OUTPUTS": 2}


def test_check_tuning_and_settle():
    model, versions = host.cpu_key(), host.library_versions()
    width = config.VECTOR_BYTES
    good = _record(**config.PACKAGED)
    assert config.check_tuning(good, model, versions, width) == config.PACKAGED
    with pytest.raises(ValueError, match=r"format 1 \(found format 99\)"):
        config.check_tuning(dict(good, format=99), model, versions, width)
    with pytest.raises(ValueError, match=r"in \[0, 2\*\*40\], got -5"):
        config.check_tuning(_record(FORWARD_TILED_MAX_MACS=-5), model, versions, width)
    with pytest.raises(ValueError, match="must be an integer"):
        config.check_tuning(_record(FORWARD_TILED_MAX_MACS=2.5), model, versions, width)
    with pytest.raises(ValueError, match="got True"):  # JSON's true is no count
        config.check_tuning(_record(FORWARD_LOOP_MAX_OUTPUTS=True), model, versions, width)
    with pytest.raises(ValueError, match="other versions"):
        config.check_tuning(dict(good, versions=dict(versions, numba="0.1")), model, versions,
                            width)
    with pytest.raises(ValueError, match="another CPU"):
        config.check_tuning(good, "Some Other CPU", versions, width)
    with pytest.raises(ValueError, match="tiles of 16-byte vectors, these are"):
        config.check_tuning(dict(good, vector_bytes=16), model, versions, width)
    with pytest.raises(ValueError, match="'values' must be an object"):
        config.check_tuning(dict(good, values=[1, 2]), model, versions, width)
    # a near-tie goes to the pair nearest the packaged values, a clear win does not
    totals = {(0, 1 << 10): 10.0, (0, 1 << 18): 10.05, (4, 1 << 18): 12.0}
    assert tuning.settle(totals, (4, 1 << 18)) == (0, 1 << 18)
    assert tuning.settle(totals, (0, 1 << 10)) == (0, 1 << 10)
    totals[0, 1 << 18] = 11.0
    assert tuning.settle(totals, (4, 1 << 18)) == (0, 1 << 10)


def test_host_choices(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(host.TUNING_ENV, raising=False)
    path, named = host.tuning_choice(config.VECTOR_BYTES)
    assert path == os.path.join(str(tmp_path), "numba_dense", os.path.basename(path))
    assert not named and os.path.basename(path).startswith("dispatch-")
    assert host.tuning_choice(32, {host.TUNING_ENV: "off"}) == (None, False)
    assert host.tuning_choice(32, {host.TUNING_ENV: "OFF"}) == (None, False)
    assert host.tuning_choice(32, {host.TUNING_ENV: "/a/b.json"}) == ("/a/b.json", True)
    other = host.tuning_file(config.VECTOR_BYTES, "Another CPU",
                             dict(host.library_versions(), numpy="1.0"))
    assert other != path and "another-cpu" in other
    assert host.tuning_file(32) != host.tuning_file(64)  # each tile width its own crossovers


def test_tune_refuses_bad_arguments_in_one_line(capsys):
    from numba_dense.model.interfaces import cli
    for argv, flag, shown in ((["tune", "--budget", "0"], "--budget", "'0'"),
                              (["tune", "--budget", "inf"], "finite seconds", "'inf'"),
                              (["tune", "--widths", "8,x"], "--widths", "'8,x'")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and flag in err and shown in err
        assert "expected" in err
    with pytest.raises(ValueError, match="budget: expected finite seconds > 0, got -1"):
        tuning.tune(budget=-1)
    with pytest.raises(ValueError, match="budget: expected finite seconds > 0, got inf"):
        tuning.tune(budget=float("inf"))
    # one width places no crossover: refused before anything is measured
    with pytest.raises(ValueError, match=r"at least 2 different widths, got \[8\] "
                                         r"\(a grid of 1 shape of one width"):
        tuning.tune(batches=[16], widths=[8])
    with pytest.raises(ValueError, match=r"widths: expected integers >= 1, got \[0\]"):
        tuning.tune(widths=[0])
    result = subprocess.run([sys.executable, "-m", "numba_dense.kernels", "nonsense"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "'nonsense'" in result.stderr and "expected" in result.stderr


def test_each_grid_timing_keeps_its_fastest_round():
    """A burst of another process during one implementation's turn slows that round only:
    the implementations take turns and each keeps its fastest round."""
    calls = []

    def timed(name, slow_runs):
        def fn(reps):
            calls.append(name)
            if calls.count(name) in slow_runs:
                time.sleep(0.05)  # a burst of another process
            time.sleep(0.002 * reps)
        return fn
    # runs 1-2 warm up and find reps (2 ms a call: 4 reps pass 5 ms), 3 the first round
    fast, burst = timed("a", ()), timed("b", (3,))
    a, b = tuning.fastest_of_rounds([(fast, ()), (burst, ())], target=0.015, rounds=3)
    assert calls.count("a") == calls.count("b") == 5
    assert calls[-4:] == ["a", "b", "a", "b"]  # turns, round after round
    assert b < 1.5 * a  # the burst decided nothing
    calls.clear()
    once = tuning.seconds_per_call(timed("c", (3,)), (), target=0.015)
    assert once > 1.5 * a  # a single timing keeps it
