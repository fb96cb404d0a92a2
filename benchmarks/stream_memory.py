"""Peak resident memory of training on a .npy file, against the file's size.

    python -m benchmarks.stream_memory --rows 10000000 --folder /tmp/big   # a 4 GB file

Writes X.npy (rows x 100 float32) and y.npy into ``--folder`` (kept for reruns), then trains
``MLP([100, 16, 1])`` for one epoch on the files in a fresh subprocess and reports its peak
RSS (``VmHWM``) after start-up and compilation, and at the end.
"""

import argparse
import os
import subprocess
import sys

import numpy as np

_CHILD = """
import sys, time
import numpy as np
from numba_dense.model import MLP

def peak_mb():  # VmHWM: this process's own high-water mark (ru_maxrss inherits the parent's)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024

folder = sys.argv[1]
net = MLP([100, 16, 1], seed=0)
net.fit(np.zeros((256, 100), np.float32), np.zeros(256, np.float32), epochs=1)  # compile
base = peak_mb()
start = time.perf_counter()
h = net.fit(folder + "/X.npy", folder + "/y.npy", epochs=1, batch_size=256, seed=0)
seconds = time.perf_counter() - start
print(base, peak_mb(), seconds, h.loss[0])
"""


def write_files(folder, rows, cols=100, block=500_000):
    X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), "w+", np.float32, (rows, cols))
    y = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), "w+", np.float32, (rows,))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(cols).astype(np.float32) / np.float32(np.sqrt(cols))
    for a in range(0, rows, block):
        b = min(a + block, rows)
        X[a:b] = rng.standard_normal((b - a, cols), dtype=np.float32)
        y[a:b] = np.maximum(X[a:b] @ w, 0)
    X.flush()
    y.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--folder", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.folder, exist_ok=True)
    path = os.path.join(args.folder, "X.npy")
    if not os.path.exists(path) or np.load(path, mmap_mode="r").shape[0] != args.rows:
        write_files(args.folder, args.rows)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _CHILD, args.folder], capture_output=True,
                         text=True, check=True, cwd=root)
    base, peak, seconds, loss = map(float, out.stdout.split())
    size = os.path.getsize(path) + os.path.getsize(os.path.join(args.folder, "y.npy"))
    print("files: %.2f GB (%d rows x 100 float32, and y)" % (size / 1e9, args.rows))
    print("peak RSS after start-up and compilation: %.0f MB" % base)
    print("peak RSS after one epoch on the files:   %.0f MB (+%.0f MB)" % (peak, peak - base))
    print("epoch: %.1f s, %.3g rows/s, loss %.4g" % (seconds, args.rows / seconds, loss))


if __name__ == "__main__":
    main()
