"""The trial of the exactly-once checks: it leaves one line per run, then reports like a real one.

The ``runs`` line comes first, before any result, so a process the daemon lost track of (and
started again) is counted even when it is killed or its results are never stored. It goes to
stdout too: on a Ray node the trial folder is the node's, and stdout is what comes back. No torch:
a trial starts as fast as Python does, which keeps a crash-stress round short.
"""

import argparse
import os
import time

import trials

parser = argparse.ArgumentParser()
parser.add_argument("--reports", type=int, default=3, help="intermediate results before the final one")
parser.add_argument("--interval", type=float, default=0.05, help="seconds between two results")
args = parser.parse_args()

runs = os.path.join(os.environ["NASCTL_TRIAL_DIR"], "runs")
run = f"{os.getpid()} {time.time():.6f}"
fd = os.open(runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
try:
    os.write(fd, f"{run}\n".encode())
finally:
    os.close(fd)
print(run, flush=True)

parameters = trials.get_next_parameter()
score = sum(value["_idx"] for value in parameters.values()) / 100
for step in range(args.reports):
    time.sleep(args.interval)
    trials.report_intermediate_result(score * (step + 1) / (args.reports + 1))
time.sleep(args.interval)
trials.report_final_result(score)
