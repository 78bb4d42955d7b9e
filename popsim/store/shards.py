"""Several processes: one shard file each, stitched into a master file by virtual datasets."""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import cast

import h5py
import numpy as np

from .errors import StoreError
from .h5 import dataset, int_attr
from .journal import _replace
from .reader import chunks_done


def shard_path(path: str | os.PathLike, process: int, n_processes: int) -> Path:
    """The shard file of ``process`` for the master file ``path``: ``<stem>.part<i>of<n>.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.part{process}of{n_processes}{path.suffix}")


def _dim_names(ds: h5py.Dataset) -> list[str]:
    # a dimension scale is a named dataset (h5py types ``name`` as optional, for anonymous ones)
    return [cast(str, ds.dims[i][0].name).lstrip("/") if len(ds.dims[i]) else ""
            for i in range(ds.ndim)]


def _virtual(f: h5py.File, name: str, shards: list[Path], owner) -> None:
    """Replace the patient-axis variable ``name`` of ``f`` by a virtual dataset of the same
    shape, fill value, dimensions and attributes, whose chunk ``c`` comes from
    ``shards[owner(c)]``."""
    ds = dataset(f, name)
    dims = _dim_names(ds)
    axis = dims.index("patient")
    n = dataset(f, "patient").shape[0]
    size = int_attr(f["chunk_done"], "chunk_size")
    attrs = {k: v for k, v in ds.attrs.items() if k != "DIMENSION_LIST"}
    layout = h5py.VirtualLayout(shape=ds.shape, dtype=ds.dtype)
    for c in range(dataset(f, "chunk_done").shape[0]):
        sel = [slice(None)] * ds.ndim
        sel[axis] = slice(c * size, min((c + 1) * size, n))
        src = h5py.VirtualSource(shards[owner(c)].name, name, shape=ds.shape)
        layout[tuple(sel)] = src[tuple(sel)]
    fill = ds.fillvalue
    for i, d in enumerate(dims):
        if d:
            ds.dims[i].detach_scale(f[d])
    del f[name]
    v = f.create_virtual_dataset(name, layout, fillvalue=fill)
    for i, d in enumerate(dims):
        if d:
            v.dims[i].attach_scale(f[d])
    for k, val in attrs.items():
        v.attrs[k] = val


def stitch(path: str | os.PathLike, shards: list[str | os.PathLike], owner) -> None:
    """Write the master file ``path``: the layout of the shards, every patient-axis variable a
    virtual dataset whose chunk ``c`` comes from ``shards[owner(c)]`` (shard files named by their
    base name, so the set can be moved together). Each shard must hold its chunks."""
    path = Path(path)
    files = [Path(s) for s in shards]
    for k, s in enumerate(files):
        done = chunks_done(s)
        mine = [c for c in range(done.size) if owner(c) == k]
        if not done[mine].all():
            raise StoreError(f"{s}: {int((~done[mine]).sum())} of its chunks are not written")
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(files[0], tmp)
    with h5py.File(tmp, "r+") as f:
        for name in list(f):
            if name != "patient" and "patient" in _dim_names(dataset(f, name)):
                _virtual(f, name, files, owner)
        dataset(f, "chunk_done")[...] = 1
        f.attrs["shards"] = ",".join(s.name for s in files)
        for k in ("process_id",):
            if k in f.attrs:
                del f.attrs[k]
        f.attrs["complete"] = np.int64(1)
        f.attrs["completed"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    _replace(tmp, path)
