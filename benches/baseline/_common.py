"""Shared by the baselines: arguments, timing, the JSON line sverka reads."""

import argparse
import json
import resource
import sys
import time


def args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True, help="folder with the CSV files sverka wrote")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions")
    return p.parse_args()


def timed(fn, repeat):
    """Runs fn() `repeat` times; returns (seconds per run, last result)."""
    seconds, result = [], None
    for _ in range(max(repeat, 1)):
        result = None
        t = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t)
    return seconds, result


def report(engine, version, seconds, counts):
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "engine": engine,
        "version": version,
        "seconds": seconds,
        "counts": {k: int(v) for k, v in sorted(counts.items()) if int(v) > 0},
        "peak_rss_mib": peak_kib / 1024.0,
    }))
    sys.stdout.flush()
