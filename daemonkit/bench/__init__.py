"""The latency runner: peers, timed loops, statistics, results and their views."""
