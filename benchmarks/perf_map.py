"""Name Numba's compiled functions for Linux ``perf``: where an epoch's time goes, function
by function.

    perf record -o /tmp/t3.data python -m benchmarks.perf_map T3 --epochs 30
    perf report -i /tmp/t3.data --no-children --sort symbol --dsos "[JIT] tid PID"
    python -m benchmarks.perf_map T3 --epochs 30 --n-jobs 2 --batch 256

``perf`` sees the code Numba compiles as anonymous addresses. This trains a configuration
of ``benchmarks.configs`` with ``MLP.fit`` as ``compare_peers`` does (float32, plain SGD,
no shuffling), one epoch first so that everything is compiled; then writes
``/tmp/perf-<pid>.map`` (perf's format for JIT code: start, size and name, a line a
function) naming every function of every library Numba compiled; then trains the epochs
that are timed, and prints their seconds and the ``perf report`` command with its PID.

Numba keeps a library's LLVM module, and so its names, only for what it compiled in this
process, not for what it loaded from its cache: the run therefore compiles into a fresh
temporary cache folder (``NUMBA_CACHE_DIR``), 30-90 s before the first epoch. A function's
size is taken up to the next one's start. Functions inlined into their callers are
counted in the callers; the names are Numba's mangled ones (``..._column_block...``).
"""

import argparse
import os
import sys
import tempfile
import time


def compiled_functions():
    """{address: name} of every function in the libraries of every Numba dispatcher of
    this process whose LLVM module Numba still holds."""
    import gc
    from numba.core.registry import CPUDispatcher
    found = {}
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance asks a dead weakref.proxy for its class and
        # raises ReferenceError
        if not issubclass(type(obj), CPUDispatcher):
            continue
        for result in obj.overloads.values():
            library = result.library
            try:
                module, engine = library._final_module, library._codegen._engine
            except AttributeError:
                continue
            for fn in module.functions:
                if fn.is_declaration:
                    continue
                try:
                    address = engine.get_function_address(fn.name)
                except Exception:  # noqa: BLE001 - a symbol the engine does not hold
                    continue
                if address:
                    found[address] = fn.name
    return found


def write_perf_map(path=None):
    """Write perf's map of the compiled functions (``/tmp/perf-<pid>.map``); returns
    (path, count)."""
    path = path or os.path.join("/tmp", "perf-%d.map" % os.getpid())
    found = compiled_functions()
    starts = sorted(found)
    with open(path, "w") as out:
        for i, start in enumerate(starts):
            size = (starts[i + 1] - start) if i + 1 < len(starts) else 4096
            out.write("%x %x %s\n" % (start, min(size, 1 << 20), found[start]))
    return path, len(starts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a configuration of benchmarks.configs (T1, T3, ...)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=None,
                        help="minibatch rows instead of the configuration's own")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="fit's n_jobs (default 1: the one-thread epoch)")
    args = parser.parse_args(argv)
    if "numba" in sys.modules:
        raise SystemExit("perf_map: run it as a program, before Numba is imported")
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-dense-perf-map-")
    from numba_dense.model import MLP
    from .configs import CONFIGS, LR, make_data
    config = CONFIGS[args.config]
    if args.batch:
        config = config._replace(batch=args.batch)
    X, Y = make_data(config)
    net = MLP(config.sizes, output=config.output, seed=0)
    options = dict(batch_size=config.batch, lr=LR, shuffle=False, n_jobs=args.n_jobs,
                   standardize_target=False)
    net.fit(X, Y, epochs=1, **options)  # compiles everything the timed epochs run
    path, count = write_perf_map()
    start = time.perf_counter()
    net.fit(X, Y, epochs=args.epochs, **options)
    seconds = (time.perf_counter() - start) / args.epochs
    print("%s batch %d n_jobs %d: %.4f s an epoch; %d functions named in %s"
          % (config.name, config.batch, args.n_jobs, seconds, count, path))
    print('perf report -i PERF.DATA --no-children --sort symbol --dsos "[JIT] tid %d"'
          % os.getpid())


if __name__ == "__main__":
    main()
