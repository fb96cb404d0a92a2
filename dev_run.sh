# Final short run on the 16-core device machine: tune's thread crossover over 2..16 threads.
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/nbcache NUMBA_DENSE_TUNING=off
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3
timeout 150 python3 -c "
from numba_dense.kernels import tuning
v, rows = tuning.split_threads(tuning.SPLIT_BATCHES['full'])
print('SPLIT_MIN_MACS measured:', v)
for r in rows: print('k %2d batch %4d step %9d  1 thread %.4f s  k threads %.4f s  %.2fx' % (r[0], r[1], r[2], r[3], r[4], r[3] / r[4]))
" 2>&1 | tee $OUT/split.txt
