"""The scenarios of bench/bench_rollouts.py, one module each, and their shared world."""
