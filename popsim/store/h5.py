"""Typed access to what a cohort file stores, for the type checker: h5py types ``group[name]``
as ``Group | Dataset | Datatype`` and an attribute's value as an array or ``Empty``, where the
file format says which one it is. These are casts: nothing is checked or converted at run time.
"""

from __future__ import annotations

from typing import cast

import h5py
import numpy as np


def dataset(group: h5py.Group, name: str) -> h5py.Dataset:
    """``group[name]``, a variable of the file (every named variable is a dataset)."""
    return cast(h5py.Dataset, group[name])


def int_attr(obj: h5py.HLObject, key: str) -> int:
    """The integer attribute ``key`` of ``obj`` (stored as a numpy integer scalar)."""
    return int(cast(np.integer, obj.attrs[key]))


def array_attr(obj: h5py.HLObject, key: str) -> np.ndarray:
    """The array attribute ``key`` of ``obj`` (e.g. ``flag_values``)."""
    return cast(np.ndarray, obj.attrs[key])
