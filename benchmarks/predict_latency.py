"""Serving latency: one row and 1,000,000 rows through T1's network (20-64-64-1, float32).

Implementations, each timed in its own subprocess, in alternating order round after round
(so that a neighbour's load falls on all of them alike), medians reported:

- ``numba-dense``: ``MLP.predict`` (one row: the compiled small-input path; many rows:
  ranges of whole batches on every free core, ``model.data.parallel``; a round's line
  shows how many threads the load check gave each of its three batch calls);
- ``sklearn``: scikit-learn's ``MLPRegressor.predict`` with the same weights;
- ``onnxruntime``: the graph of ``MLP.to_onnx`` in an ONNX Runtime session (default
  threads), fed directly (no Python wrapper around ``session.run``);
- ``torch``: the same layers in PyTorch (``torch.inference_mode``), when it is installed.

    python -m benchmarks.predict_latency [--rounds 5] [--batch-rows 1000000] [--impls ...]

Prints the CPU model (/proc/cpuinfo), the load average, per-round figures and a table of
medians: single-row latency in microseconds, batch time in milliseconds and rows/s.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from .configs import cpu_model

SIZES = [20, 64, 64, 1]  # T1 (benchmarks/configs.py)
IMPLS = ("numba-dense", "sklearn", "onnxruntime", "torch")


def make_model(folder):
    """T1's network with seeded random weights and biases, saved as .npz and .onnx."""
    from numba_dense import MLP
    net = MLP(SIZES, seed=0)
    rng = np.random.default_rng(1)
    for b in net.biases:
        b[...] = rng.standard_normal(b.shape) * 0.1
    net.save(os.path.join(folder, "net.npz"))
    net.to_onnx(os.path.join(folder, "net.onnx"))


def _predictor(impl, folder):
    """A function of X (N, 20) float32 for ``impl``."""
    from numba_dense import MLP
    net = MLP.load(os.path.join(folder, "net.npz"))
    if impl == "numba-dense":
        return net.predict
    if impl == "sklearn":
        from sklearn.neural_network import MLPRegressor
        reg = MLPRegressor(hidden_layer_sizes=SIZES[1:-1], max_iter=1)
        X0 = np.zeros((4, SIZES[0]), np.float32)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(X0, np.zeros(4, np.float32))
        reg.coefs_ = [W.T.copy() for W in net.weights]
        reg.intercepts_ = [b.copy() for b in net.biases]
        return reg.predict
    if impl == "onnxruntime":
        import onnxruntime as ort
        session = ort.InferenceSession(os.path.join(folder, "net.onnx"),
                                       providers=["CPUExecutionProvider"])
        run = session.run
        return lambda X: run(None, {"X": X})[0]
    if impl == "torch":
        import torch
        layers = []
        for l, (W, b) in enumerate(zip(net.weights, net.biases)):
            linear = torch.nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if l < len(net.weights) - 1:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).eval()

        def predict(X):
            with torch.inference_mode():
                return model(torch.from_numpy(X)).numpy()
        return predict
    raise ValueError("unknown implementation %r" % impl)


def worker(impl, folder, batch_rows):
    """Time ``impl`` in this process; print one JSON line."""
    predict = _predictor(impl, folder)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, SIZES[0])).astype(np.float32)
    for _ in range(2000):  # compile / warm up
        predict(x)
    calls, single = 2000, []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(calls):
            predict(x)
        single.append((time.perf_counter() - t) / calls * 1e6)
    X = rng.standard_normal((batch_rows, SIZES[0])).astype(np.float32)
    predict(X[:10_000])
    batch, threads = [], []
    for _ in range(3):
        t = time.perf_counter()
        predict(X)
        batch.append(time.perf_counter() - t)
        if impl == "numba-dense":  # the call's load reading, reused for half a second
            from numba_dense.model.data import parallel
            threads.append(parallel.threads_for(batch_rows))
    result = {"impl": impl, "single_us": statistics.median(single),
              "batch_s": statistics.median(batch)}
    if threads:
        result["threads"] = ",".join(map(str, threads))
    print(json.dumps(result))


def available(impl):
    module = {"numba-dense": "numba_dense", "sklearn": "sklearn", "onnxruntime": "onnxruntime",
              "torch": "torch"}[impl]
    import importlib.util
    return importlib.util.find_spec(module) is not None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-rows", type=int, default=1_000_000)
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.folder, args.batch_rows)
    impls = [i for i in args.impls if available(i)]
    skipped = sorted(set(args.impls) - set(impls))
    print("CPU: %s (%d cores); load average %s" % (cpu_model(), os.cpu_count(),
                                                   " ".join("%.2f" % v for v in os.getloadavg())))
    print("network %s float32, batch %s rows%s" % ("-".join(map(str, SIZES)),
                                                   format(args.batch_rows, ","),
                                                   "; not installed: " + ", ".join(skipped)
                                                   if skipped else ""))
    results = {i: [] for i in impls}
    with tempfile.TemporaryDirectory(prefix="predict-latency-") as folder:
        make_model(folder)
        for r in range(args.rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]  # alternate who goes first
            for impl in order:
                line = subprocess.run(
                    [sys.executable, "-m", "benchmarks.predict_latency", "--worker", impl,
                     "--folder", folder, "--batch-rows", str(args.batch_rows)],
                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                result = json.loads(line)
                results[impl].append(result)
                print("round %d  %-12s single %8.2f us   batch %8.1f ms%s"
                      % (r + 1, impl, result["single_us"], result["batch_s"] * 1e3,
                         "   threads " + result["threads"] if "threads" in result else ""),
                      flush=True)
    print()
    print("| implementation | single row (µs) | %s rows (ms) | rows/s |"
          % format(args.batch_rows, ","))
    print("|---|---:|---:|---:|")
    for impl in impls:
        single = statistics.median(r["single_us"] for r in results[impl])
        batch = statistics.median(r["batch_s"] for r in results[impl])
        rate = format(int(args.batch_rows / batch), ",")
        print("| %s | %.2f | %.1f | %s |" % (impl, single, batch * 1e3, rate))
    if "numba-dense" in impls:
        mine = results["numba-dense"]
        single = statistics.median(r["single_us"] for r in mine)
        batch = statistics.median(r["batch_s"] for r in mine)
        for impl in impls[1:]:
            other_single = statistics.median(r["single_us"] for r in results[impl])
            other_batch = statistics.median(r["batch_s"] for r in results[impl])
            print("numba-dense vs %s: single row %.1fx faster, batch %.2fx"
                  % (impl, other_single / single, other_batch / batch))


if __name__ == "__main__":
    sys.exit(main())
