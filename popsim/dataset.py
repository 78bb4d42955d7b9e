"""A cohort file as an :class:`xarray.Dataset` for analysis in a notebook. Imports no JAX.

:func:`open_dataset` reads a cohort file through :mod:`popsim.store` (so a write session that
was killed is undone first, as for every popsim reader) and returns it in memory with:

* dimensions ``patient``, ``day`` and, when the run's config has arms, ``arm`` (a run without
  ``[[arm]]`` has the one arm ``baseline``, which is dropped);
* the outputs as data variables (float32), NaN for every patient-arm whose ``status`` is not
  ``ok``, so a statistic never mixes in a failed solve;
* ``status`` decoded to its meaning (``ok``, ``solver_failed``, ..., ``not_computed``);
* the covariates as coordinates along ``patient`` (categories decoded to their labels), and
  ``ckd_stage``, the KDIGO GFR category of each patient's eGFR;
* the sampled parameters as data variables ``param_<name>``;
* a ``units`` and ``long_name`` attribute on every variable and coordinate, and the file's
  root attributes (config, seed, versions) on the dataset.
"""

from __future__ import annotations

import os
import tomllib

import numpy as np

from popsim import store
from popsim.facts import CKD_STAGES, EGFR_STRATA, Status, title

NOT_COMPUTED = "not_computed"
"""The decoded ``status`` of a patient-arm not written yet (code -1 in the file)."""


def ckd_stage(egfr) -> np.ndarray:
    """The KDIGO GFR category (``G1`` ... ``G5``) of each eGFR (mL/min/1.73 m²), from
    :data:`popsim.facts.EGFR_STRATA`; ``""`` for NaN."""
    egfr = np.asarray(egfr, np.float64)
    out = np.full(egfr.shape, "", dtype=f"<U{max(map(len, CKD_STAGES))}")
    for (lo, hi, _), stage in zip(EGFR_STRATA, CKD_STAGES, strict=True):
        out[(egfr >= lo) & (egfr < hi)] = stage
    return out


def _has_arms(attrs: dict, arms: tuple[str, ...]) -> bool:
    """Whether the run's config names arms (``[[arm]]``); without a readable config, whether
    the file's arms are anything but the single default arm."""
    try:
        return "arm" in tomllib.loads(str(attrs["config"]))
    except (KeyError, tomllib.TOMLDecodeError):
        return arms != ("baseline",)


def _decoded_status(coh: store.Cohort) -> np.ndarray:
    codes = coh.status.astype(np.int64)
    meanings = coh.status_meanings
    labels = {c: meanings.get(c, str(c)) for c in np.unique(codes).tolist()}
    labels[-1] = NOT_COMPUTED
    out = np.empty(codes.shape, dtype=object)
    for c, label in labels.items():
        out[codes == c] = label
    return out.astype(str)


def _attrs(unit: str, long_name: str) -> dict:
    return {"units": unit, "long_name": long_name}


def _coordinates(coh: store.Cohort) -> dict:
    coords = {
        "arm": ("arm", np.array(coh.arms, dtype=str), _attrs("1", "intervention arm")),
        "patient": ("patient", coh.patient_ids,
                    _attrs("1", "patient index in the population of the config and seed")),
        "day": ("day", np.asarray(coh.times, np.float64),
                _attrs("day", "time since the start of the simulation")),
    }
    for name in coh.covariate_names:
        coords[name] = ("patient", coh.covariate(name), _attrs(coh.units(name), title(name)))
    if "egfr" in coh.covariate_names:
        coords["ckd_stage"] = ("patient", ckd_stage(coh.covariate("egfr")),
                               _attrs("1", "KDIGO GFR category (G1-G5) of the eGFR"))
    return coords


def open_dataset(path: str | os.PathLike, *, variables=None):
    """Read a cohort file into an :class:`xarray.Dataset` (see the module docstring).

    Args:
        path: a cohort file written by ``popsim run`` (or ``popsim vpop select``).
        variables: the outputs to read (default: every output the file holds); the dataset is
            held in memory, so a large cohort is best read a few outputs at a time.

    Raises:
        popsim.store.StoreError: not a cohort file, or an output it does not hold.
    """
    import xarray as xr

    coh = store.open_cohort(path)
    names = coh.output_names if variables is None else tuple(
        [variables] if isinstance(variables, str) else variables)
    ok = coh.status == Status.OK  # (arm, patient)
    data = {}
    for name in names:
        values = coh.output(name)  # raises for an output the file does not hold
        data[name] = (("arm", "patient", "day"),
                      np.where(ok[:, :, None], values, np.float32(np.nan)),
                      _attrs(coh.units(name), _long_name(name)))
    data["status"] = (("arm", "patient"), _decoded_status(coh),
                      _attrs("1", "outcome of the simulation (outputs are NaN unless ok)"))
    for p in coh.parameter_names:
        data[f"param_{p}"] = ("patient", coh.parameter(p),
                              _attrs(coh.units(p), f"sampled parameter {p}"))
    ds = xr.Dataset(data, coords=_coordinates(coh), attrs=dict(coh.attrs))
    if not _has_arms(coh.attrs, coh.arms):
        ds = ds.isel(arm=0, drop=True)
    return ds


def _long_name(name: str) -> str:
    from popsim.outputs import OUTPUT_SPECS

    return OUTPUT_SPECS[name][1] if name in OUTPUT_SPECS else title(name)
