"""Throughput: popsim against SciPy solve_ivp (BDF, LSODA) on the same model, side by side.

Same as `popsim bench`; see popsim/bench.py for the workload and methods.

Usage: python benchmarks/throughput.py [--sizes 100,1000,10000] [--scipy-patients 4]
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)

from popsim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
