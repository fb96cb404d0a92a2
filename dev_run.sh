# One prepared run on the 16-core device machine: split epochs at two batch sizes, T3 peers.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/nbcache
(lscpu | egrep "Model name|^CPU\(s\)"; cat /proc/loadavg) 2>&1 | tee $OUT/host.txt
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3
timeout 150 python3 -m benchmarks.step_threads --configs T1 T3 --threads 1 2 4 8 16 --rounds 3 2>&1 | tee $OUT/default.txt
timeout 200 python3 -m benchmarks.step_threads --configs T1 T3 --threads 1 2 4 8 16 --rounds 3 --batch 256 2>&1 | tee $OUT/b256.txt
timeout 150 python3 -m benchmarks.compare_peers --configs T3 --rounds 3 2>&1 | tee $OUT/peers.txt
