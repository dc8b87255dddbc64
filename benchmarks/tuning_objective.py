"""The tiny objective of benchmarks/tuning.py's control-plane part: no torch, one metric.

It logs ``score = -((x - 1)^2 + (y + 2)^2)`` once, at step 1, through the SDK (a trial
needs a value), and exits. Its last Python code prints ``exit <unix time> cpu <seconds>``
(the CPU time it used): that handler is registered before ``cnai`` is imported, and
atexit runs handlers last-registered-first, so it runs after the SDK's own exit flush,
which waits until the point is acknowledged. The interpreter's teardown comes after it;
the benchmark's trial command therefore also prints the time once the process has gone
(``exited``, from the shell that ran it).
"""

import atexit
import os
import time


def _last_words() -> None:
    cpu = os.times()
    print(f"exit {time.time():.6f} cpu {cpu.user + cpu.system:.3f}", flush=True)


atexit.register(_last_words)

import argparse  # noqa: E402 - after the exit handler, so that it runs last

import cnai  # noqa: E402 - after the exit handler, so that it runs last

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--x", type=float, default=0.0)
parser.add_argument("--y", type=float, default=0.0)
args = parser.parse_args()
cnai.log_metrics({"score": -((args.x - 1) ** 2 + (args.y + 2) ** 2)}, step=1)
