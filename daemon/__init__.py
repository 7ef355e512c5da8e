"""Facegate: a face appliance daemon for Raspberry Pi class devices."""

import os

# The daemon runs requests in parallel on its own worker threads; a multi-threaded BLAS under each 1:N
# search (one matrix-vector product) only spins: measured, it wasted a whole core after every search
# of a 10k library and lowered throughput with 4 clients by 18%. Set before numpy is first imported;
# an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
