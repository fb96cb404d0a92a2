"""What K networks could save by training in one pass over their shared minibatches.

    python -m benchmarks.shared_pass                       # T1, K = 16, 7 rounds
    python -m benchmarks.shared_pass --network 29,64,64,1 --batch 200   # the search's

Issue 24 proposed one compiled pass for K networks that share their minibatches (the
candidates of one fold, the members of an ensemble): each minibatch gathered once for all
K, and the first layer's K products fused into one product K times wider. Everything else
in a step is each network's own work (its other layers, activations, cost, update), so
those two are the whole of what sharing can save. This measures both, on one thread, in
one process, the settings alternating round after round, medians:

- **the gather**: one network's epoch over a shuffled order (``kernels.train_epoch_batched``
  with ``batches.order`` a permutation: each minibatch's rows gathered into the
  workspace) against the same epoch in storage order (no gather). The difference is the
  most a shared gather can save a network.
- **the fused first layer**: K forward products ``(batch, n_0) x (n_0, n_1)``
  (``kernels.dense_forward``) against one ``(batch, n_0) x (n_0, K n_1)``, and K weight
  gradients (``kernels.accumulate_gradients``) against one of K times the rows, timed in
  compiled loops of many steps.

It prints each network's epoch, the saving of each part per network and epoch, and the
fraction of the epoch that sharing saves. With c cores the K networks take at least K/c
times (1 - that fraction) of one network's epoch, even with perfect scaling across cores;
issue 24's "16 networks in 6x one" needs a fraction of at least 1 - 6/8 = 25% on 2 cores.
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit

from numba_dense import kernels

from .configs import CONFIGS, LR, make_data


@njit(nogil=True)
def _forwards(Xb, Ws, b, outs, reps):
    for _ in range(reps):
        for k in range(Ws.shape[0]):
            kernels.dense_forward(Xb, Ws[k], b, outs[k], True)


@njit(nogil=True)
def _gradients(D, Xb, dWs, db, reps):
    for _ in range(reps):
        for k in range(dWs.shape[0]):
            kernels.accumulate_gradients(D[k], Xb, dWs[k], db, 1.0, False)


class Setting:
    """One network's arrays and the first layer's operands for K networks."""

    def __init__(self, sizes, batch, rows, k, seed=0):
        rng = np.random.default_rng(seed)
        config = CONFIGS["T1"]._replace(sizes=sizes, batch=batch)
        self.X, self.Y = make_data(config, rows)
        self.sizes, self.batch, self.k = sizes, batch, k
        self.network = kernels.network(np.array(sizes), [kernels.RELU] * (len(sizes) - 2)
                                       + [kernels.IDENTITY])
        self.p0 = (rng.standard_normal(kernels.param_count(np.array(sizes))) * 0.1
                   ).astype(np.float32)
        self.work = np.zeros(kernels.workspace_size(np.array(sizes), batch), np.float32)
        self.order = rng.permutation(rows).astype(np.int64)
        n_0, n_1, f = sizes[0], sizes[1], np.float32
        self.Xb = self.X[:batch].copy()
        self.Ws = (rng.standard_normal((k, n_1, n_0)) * 0.1).astype(f)
        self.W = self.Ws.reshape(k * n_1, n_0).copy()
        self.outs = np.empty((k, batch, n_1), f)
        self.out = np.empty((batch, k * n_1), f)
        self.D = rng.standard_normal((k, batch, n_1)).astype(f)
        # the fused gradient's error terms: network k's in columns k * n_1 ... (k+1) * n_1
        self.Dw = np.ascontiguousarray(self.D.transpose(1, 0, 2).reshape(batch, k * n_1))
        self.dWs = np.empty((k, n_1, n_0), f)
        self.dW = np.empty((k * n_1, n_0), f)
        self.steps = -(-rows // batch)

    def epoch(self, shuffled):
        params = self.p0.copy()
        order = self.order if shuffled else None
        opt = kernels.optimizer("sgd", params, LR)
        start = time.perf_counter()
        kernels.train_epoch_batched(self.X, self.Y, params, np.zeros_like(params),
                                    self.network, opt, kernels.batches(self.batch, order),
                                    self.work)
        return time.perf_counter() - start

    def first_layer(self, fused, gradient, reps=2000):
        """Seconds a step for the first layer's K products, one by one or fused."""
        zeros = np.zeros(self.W.shape[0] if fused else self.Ws.shape[1], np.float32)
        start = time.perf_counter()
        if gradient:
            if fused:
                _gradients(self.Dw[None], self.Xb, self.dW[None], zeros, reps)
            else:
                _gradients(self.D, self.Xb, self.dWs, zeros, reps)
        elif fused:
            _forwards(self.Xb, self.W[None], zeros, self.out[None], reps)
        else:
            _forwards(self.Xb, self.Ws, zeros, self.outs, reps)
        return (time.perf_counter() - start) / reps


def measure(setting, rounds):
    """Medians, in seconds, of each timing of ``setting`` over alternating rounds."""
    runs = {
        "shuffled": lambda: setting.epoch(True),
        "storage": lambda: setting.epoch(False),
        "forward K": lambda: setting.first_layer(False, False),
        "forward fused": lambda: setting.first_layer(True, False),
        "gradient K": lambda: setting.first_layer(False, True),
        "gradient fused": lambda: setting.first_layer(True, True),
    }
    for run in runs.values():
        run()  # compile (or load) outside the timing
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(t) for name, t in times.items()}


def savings(t, k, steps):
    """Seconds each network saves an epoch: (gather, fused forward, fused gradient)."""
    gather = max(t["shuffled"] - t["storage"], 0.0)
    forward = max(t["forward K"] - t["forward fused"], 0.0) / k * steps
    gradient = max(t["gradient K"] - t["gradient fused"], 0.0) / k * steps
    return gather, forward, gradient


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default=",".join(map(str, CONFIGS["T1"].sizes)),
                        help="layer sizes, comma-separated (default T1's)")
    parser.add_argument("--batch", type=int, default=CONFIGS["T1"].batch)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--networks", type=int, default=16, help="K")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.network.split(",")]
    setting = Setting(sizes, args.batch, args.rows, args.networks)
    t = measure(setting, args.rounds)
    gather, forward, gradient = savings(t, args.networks, setting.steps)
    epoch = t["shuffled"]
    fraction = (gather + forward + gradient) / epoch
    print("network %s, batch %d, %d rows, K = %d, one thread" % (
        "-".join(map(str, sizes)), args.batch, args.rows, args.networks))
    print("| part | seconds | of one network's epoch |")
    print("| --- | --- | --- |")
    print("| one network's shuffled epoch | %.4f | 100%% |" % epoch)
    print("| the same in storage order (no gather) | %.4f | %.1f%% |"
          % (t["storage"], 100 * t["storage"] / epoch))
    for name, saved in (("shared gather saves", gather),
                        ("fused first-layer forward saves", forward),
                        ("fused first-layer gradient saves", gradient)):
        print("| %s | %.4f | %.1f%% |" % (name, saved, 100 * saved / epoch))
    print("first layer a step, K products one by one / fused: forward %.2f / %.2f us, "
          "gradient %.2f / %.2f us" % tuple(1e6 * t[n] for n in (
              "forward K", "forward fused", "gradient K", "gradient fused")))
    print("sharing saves %.1f%% of each network's epoch: on 2 cores %d networks take at "
          "least %.2fx one alone" % (100 * fraction, args.networks,
                                     args.networks / 2 * (1 - fraction)))


if __name__ == "__main__":
    main()
