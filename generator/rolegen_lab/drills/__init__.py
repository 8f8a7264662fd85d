"""`rolegen lab drill`: game days on the lab. A scenario (scenarios.py) injects faults through the lab's control
channel while a workload writes, runs rolegen as a user would (CLI subprocesses), heals, waits for convergence
and reports what an outside observer saw (observe.py, report.py); runner.py executes it."""
