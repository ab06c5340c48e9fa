"""edgeserve benchmarks: in-process limit, edgeserve end to end, a FastAPI baseline.

Run `python -m benchmarks` (or `make bench`); `--quick` for a short smoke run.
"""
