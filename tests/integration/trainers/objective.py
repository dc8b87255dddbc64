"""A tiny objective for Experiment tests, without torch: logs a loss per step.

loss(step) = (x - 2)^2 + (y + 1)^2 + [shape == "bad"] + 1 / step, logged with
``cnai.log_metrics`` at steps 1..--steps (``--step-seconds`` apart), so the last value
is the objective plus 1/steps and a bad point is visibly bad from the first step.
``--fail`` exits 1 instead.
"""

import argparse
import sys
import time

import cnai

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0.0)
p.add_argument("--y", type=float, default=0.0)
p.add_argument("--shape", default="good")
p.add_argument("--steps", type=int, default=3)
p.add_argument("--step-seconds", type=float, default=0.0)
p.add_argument("--fail", action="store_true")
args = p.parse_args()

if args.fail:
    sys.exit(1)
base = (args.x - 2) ** 2 + (args.y + 1) ** 2 + (1.0 if args.shape == "bad" else 0.0)
for step in range(1, args.steps + 1):
    time.sleep(args.step_seconds)
    cnai.log_metrics({"loss": base + 1.0 / step, "score": -base}, step=step)
cnai.active_run().flush(timeout=30)
print(f"loss {base + 1.0 / args.steps}", flush=True)
