"""A small trainer for TrainJob tests, without torch: counts steps with a checkpoint.

Each node prints ``start step=N world=W rank=R restart=C`` (N: the step it resumes
at), then ``step N`` per step; rank 0 saves ``{"step": N, "world": W}`` after every
step, atomically, in $CNAI_CHECKPOINT_DIR/state.json. Options:

--steps N          steps in all (default 20)
--step-seconds S   time per step (default 0.05)
--fail-rank R      that rank exits with --exit-code at --fail-at-step (once per gang
                   whose restart count is below --fail-times)
--exit-code C      (default 1)
--fail-at-step K   (default 2)
--fail-times T     (default 1000: every gang)
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
p.add_argument("--step-seconds", type=float, default=0.05)
p.add_argument("--fail-rank", type=int, default=-1)
p.add_argument("--exit-code", type=int, default=1)
p.add_argument("--fail-at-step", type=int, default=2)
p.add_argument("--fail-times", type=int, default=1000)
args = p.parse_args()

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
restart = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
state = Path(os.environ["CNAI_CHECKPOINT_DIR"]) / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
print(f"start step={step} world={world} rank={rank} restart={restart}", flush=True)
while step < args.steps:
    time.sleep(args.step_seconds)
    step += 1
    print(f"step {step}", flush=True)
    failing = rank == args.fail_rank and restart < args.fail_times
    if failing and step >= args.fail_at_step:
        sys.exit(args.exit_code)
    if rank == 0:
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step, "world": world}))
        os.replace(tmp, state)
print(f"done steps={step} world={world}", flush=True)
