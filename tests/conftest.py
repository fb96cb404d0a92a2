"""Shared fixtures: dtypes, tolerances and random arrays."""

import os
import re

# The suite runs on the packaged dispatch values, not on a tuning file this machine may
# have (``python -m numba_dense tune``): tests that pin a crossover assume them, and the
# tuned values would compile every kernel again into a cache folder of their own.
# tests/test_tuning.py gives its subprocesses their own setting.
os.environ.setdefault("NUMBA_DENSE_TUNING", "off")
# No helper process compiling a first run's backward pass beside the tests
# (kernels.compile_helper): the suite's two workers fill the cores already.
# tests/test_compile_helper.py runs the helper itself.
os.environ.setdefault("NUMBA_DENSE_COMPILE_HELPER", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Numba compiles on the first call of each signature; later examples are fast.
settings.register_profile("numba", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("numba")

DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    """(rtol, atol) for comparing a kernel with its NumPy twin in this dtype."""
    return (2e-5, 2e-5) if dtype == np.float32 else (1e-12, 1e-12)


def assert_close(actual, expected, dtype, scale=1.0):
    rtol, atol = tolerance(dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol * scale, atol=atol * scale)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def random_array(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def epoch_seconds(line):
    """The seconds an epoch line printed by ``fit(verbose=True)`` reports.

    "epoch 1/8  loss 0.1  lr 0.01  0.41s  146000 samples/s" -> 0.41
    """
    return float(re.search(r" ([0-9.]+)s +[0-9]+ samples/s", line).group(1))


def pytest_configure(config):
    """Under pytest-xdist, compile the kernels most test files call once, one process per
    dtype side by side, before the workers start (``tests/warm_cache.py``: otherwise each
    worker compiles them itself, at the same time). Not in the workers, not without
    ``-n``; a warm-up that fails is only time lost: the tests compile what they call."""
    import subprocess
    import sys
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    warm = [subprocess.Popen([sys.executable, "-m", "tests.warm_cache", dtype.__name__],
                             cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for dtype in DTYPES]
    for process in warm:
        process.wait()
