"""What writing a chunk costs: HDF5 filters, chunk shapes and stored precision of the cohort file.

The data are real: the outputs, covariates, parameters and status of an existing cohort file
(``--source``, e.g. one written by ``popsim run`` on the bench workload), its patients repeated
to fill ``--chunks`` chunks of ``--chunk-size``. Each variant writes them through popsim's own
writer (:func:`popsim.store.write_chunk`: checks, undo journal, flush) into a new file with the
variant's filters (:data:`popsim.store.schema._FILTERS` replaced for the run), then one output is
read back whole. Reported: write seconds per chunk (median over chunks and repeats), file size,
and the read time.

Usage: python benchmarks/write_cost.py --source cohort.h5 [--chunks 4] [--repeats 3]
  [--out benchmarks/results/write_cost.json]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from popsim import store
from popsim.facts import STATUS_MEANINGS
from popsim.store import schema

BASE = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
VARIANTS = {
    "gzip4+shuffle (default)": dict(BASE),
    "gzip1+shuffle": dict(BASE, compression_opts=1),
    "gzip6+shuffle": dict(BASE, compression_opts=6),
    "gzip9+shuffle": dict(BASE, compression_opts=9),
    "gzip4, no shuffle": dict(BASE, shuffle=False),
    "lzf+shuffle": dict(compression="lzf", shuffle=True, fletcher32=True),
    "no compression": dict(fletcher32=True),
}


def load_source(path: Path, n: int):
    """Covariates, parameters, outputs and status of ``n`` patients (the file's, repeated)."""
    with h5py.File(path) as f:
        names = store.open_cohort(path)
        take = np.resize(np.arange(f["patient"].shape[0]), n)
        outputs = {k: f[k][...][:, take, :] for k in names.output_names}
        covs = {k: f[k][...][take] for k in names.covariate_names}
        pars = {k: f[f"param_{k}"][...][take] for k in names.parameter_names}
        status = f["status"][...][:, take]
        layout = dict(arms=tuple(names.arms), times=np.asarray(names.times),
                      outputs={k: f[k].attrs["units"] for k in names.output_names},
                      covariates={k: (("category" if "flag_values" in f[k].attrs else "float"),
                                      f[k].attrs["units"]) for k in names.covariate_names},
                      categories={k: tuple(f[k].attrs["flag_meanings"].split())
                                  for k in names.covariate_names
                                  if "flag_values" in f[k].attrs},
                      parameters={k: f[f"param_{k}"].attrs["units"]
                                  for k in names.parameter_names})
    return layout, covs, pars, outputs, status


def write_file(path: Path, layout: dict, data, chunks: int, chunk_size: int,
               dtype=np.float32) -> list[float]:
    """Create ``path`` and write ``chunks`` chunks; returns the seconds of each write."""
    covs, pars, outputs, status = data
    n = chunks * chunk_size
    store.create(path, store.CohortLayout(n_patients=n, chunk_size=chunk_size, **layout), {},
                 status_meanings=STATUS_MEANINGS)
    outputs = {k: v.astype(dtype) for k, v in outputs.items()}
    times = []
    for c in range(chunks):
        t0 = time.perf_counter()
        store.write_chunk(path, c, c * chunk_size, covs, pars, outputs, status)
        times.append(time.perf_counter() - t0)
    return times


RAW = {  # (stored dtype, chunk shape as (arm, patients or None for the whole chunk, time or None))
    "raw h5py: float32, chunks (1, chunk, T) (the store's)": (np.float32, (1, None, None)),
    "raw h5py: float64, chunks (1, chunk, T)": (np.float64, (1, None, None)),
    "raw h5py: float32, chunks (1, 100, T)": (np.float32, (1, 100, None)),
    "raw h5py: float32, chunks (1, chunk, 32)": (np.float32, (1, None, 32)),
}


def raw_write(path: Path, outputs: dict, chunks: int, dtype, shape) -> list[float]:
    """The outputs alone written with plain h5py (gzip 4, shuffle, Fletcher-32): stored
    precision and chunk shapes the store does not offer."""
    na, pc, nt = next(iter(outputs.values())).shape
    cshape = (1, min(shape[1] or pc, pc), min(shape[2] or nt, nt))
    times = []
    with h5py.File(path, "w") as f:
        for k in outputs:
            f.create_dataset(k, (na, chunks * pc, nt), dtype=dtype, chunks=cshape, **BASE)
        for c in range(chunks):
            t0 = time.perf_counter()
            for k, v in outputs.items():
                f[k][:, c * pc:(c + 1) * pc, :] = v.astype(dtype)
            f.flush()
            times.append(time.perf_counter() - t0)
    return times


def read_seconds(path: Path, name: str) -> float:
    t0 = time.perf_counter()
    with h5py.File(path) as f:
        f[name][...]
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    layout, *data = load_source(args.source, args.chunk_size)
    first = next(iter(layout["outputs"]))
    rows = []
    for label, filters in VARIANTS.items():
        rows.append(_variant(label, filters, layout, data, args, first))
    schema._FILTERS = dict(BASE)
    for label, (dtype, shape) in RAW.items():
        rows.append(_raw_variant(label, dtype, shape, data[2], args, first))
    result = {"source": str(args.source), "chunk_size": args.chunk_size, "chunks": args.chunks,
              "repeats": args.repeats, "times": len(layout["times"]),
              "outputs": len(layout["outputs"]), "arms": len(layout["arms"]),
              "load_average": os.getloadavg(), "h5py": h5py.__version__,
              "hdf5": h5py.version.hdf5_version, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _variant(label, filters, layout, data, args, first) -> dict:
    schema._FILTERS = filters
    per_chunk, sizes, reads = [], [], []
    with tempfile.TemporaryDirectory(prefix="popsim-write-cost-") as tmp:
        for r in range(args.repeats):
            path = Path(tmp) / f"v{r}.h5"
            per_chunk += write_file(path, layout, data, args.chunks, args.chunk_size)
            sizes.append(path.stat().st_size)
            reads.append(read_seconds(path, first))
            path.unlink()
    row = {"variant": label, "write_s_per_chunk": statistics.median(per_chunk),
           "file_mb": statistics.median(sizes) / 1e6, "read_one_output_s": statistics.median(reads)}
    print(json.dumps(row), flush=True)
    return row


def _raw_variant(label, dtype, shape, outputs, args, first) -> dict:
    per_chunk, sizes, reads = [], [], []
    with tempfile.TemporaryDirectory(prefix="popsim-write-cost-") as tmp:
        for r in range(args.repeats):
            path = Path(tmp) / f"r{r}.h5"
            per_chunk += raw_write(path, outputs, args.chunks, dtype, shape)
            sizes.append(path.stat().st_size)
            reads.append(read_seconds(path, first))
            path.unlink()
    row = {"variant": label, "write_s_per_chunk": statistics.median(per_chunk),
           "file_mb": statistics.median(sizes) / 1e6, "read_one_output_s": statistics.median(reads)}
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
