"""Throughput: popsim against SciPy solve_ivp (BDF, LSODA) on the same model, side by side.

Same as `popsim bench`; see popsim/bench.py for the workload and methods. popsim runs on every
local device: `--devices N` (this script only) makes JAX's CPU backend expose N host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`, which must be set before JAX starts), one
per core, as `popsim run --devices N` uses them.

Writes benchmarks/results/throughput.json and the popsim bench table of benchmarks/RESULTS.md
(unless --out / --table say otherwise).

Usage: python benchmarks/throughput.py [--devices 2] [--sizes 100,1000,10000] [--scipy-patients 4]
"""

import os
import sys


def _take_devices(argv):
    """Remove ``--devices N`` from ``argv``; returns (N or None, the rest)."""
    rest, n = [], None
    it = iter(argv)
    for a in it:
        if a == "--devices":
            n = next(it, None)
        elif a.startswith("--devices="):
            n = a.split("=", 1)[1]
        else:
            rest.append(a)
    if n is not None and (not n.isdigit() or int(n) < 1):
        sys.exit(f"--devices {n}: must be a positive whole number")
    return (int(n) if n is not None else None), rest


if __name__ == "__main__":
    n_devices, args = _take_devices(sys.argv[1:])
    if n_devices and n_devices > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform"
                                   f"_device_count={n_devices}").strip()

    import jax

    jax.config.update("jax_enable_x64", True)

    from popsim.cli import main

    here = os.path.dirname(os.path.abspath(__file__))
    if "--out" not in args:  # this script keeps the repository's results up to date
        args += ["--out", os.path.join(here, "results", "throughput.json"), "--force"]
    if "--table" not in args:
        args += ["--table", os.path.join(here, "RESULTS.md")]
    sys.exit(main(["bench", *args]))
