"""The record of an evidence fit: ``fit.json`` (everything needed to judge and reproduce it),
``parameters.toml`` (a parameter file ``--params`` accepts, pointing to ``fit.json``), the
table of observations (``observations.csv``) and figures, written all-or-nothing into one
directory.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from pathlib import Path

import numpy as np
import tomli_w

from popsim._version import MODEL_VERSION, __version__, library_versions
from popsim.calibration.evidence_fit import Evaluation, EvidenceFit
from popsim.calibration.spec import TRANSFORMS
from popsim.calibration.uncertainty import PROFILE_THRESHOLD

FIT_RECORD = "fit.json"
PARAMETER_FILE = "parameters.toml"


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def observation_rows(ev: Evaluation, split: str) -> list[dict]:
    """One row per observation: model against data, with the likelihood term."""
    rows = []
    for i, s in enumerate(ev.problem.obs):
        o = s.obs
        iv = o.interval()
        model = float(ev.values[i])
        match = iv is not None and math.isfinite(model) and iv[0] <= model <= iv[1]
        rows.append(dict(split=split, study=ev.problem.blocks[s.block].sid,
                         observation=o.label, statistic=o.statistic, output=o.output,
                         arm=o.arm, day=o.day, unit=o.unit, model=_num(model),
                         model_mc_se=_num(ev.mc_se[i]), patients=_num(ev.counts[i]),
                         value=o.value, se=s.se, basis=o.uncertainty_basis(),
                         interval=list(iv) if iv else None,
                         match=bool(match) if iv else None, fitted=s.fitted,
                         likelihood=s.likelihood, nll=_num(ev.nll_terms[i])))
    return rows


def study_rows(res: EvidenceFit) -> list[dict]:
    """Per study: split, NLL (sum of its likelihood terms), observations inside their 95%
    interval."""
    rows = []
    for split, ev in (("fit", res.train), ("held-out", res.holdout)):
        if ev is None:
            continue
        obs = observation_rows(ev, split)
        for sid, nll in ev.per_study().items():
            mine = [r for r in obs if r["study"] == sid]
            checked = [r for r in mine if r["match"] is not None]
            rows.append(dict(split=split, study=sid, nll=_num(nll),
                             terms=sum(r["likelihood"] for r in mine),
                             matched=sum(bool(r["match"]) for r in checked),
                             checked=len(checked)))
    return rows


def fit_record(res: EvidenceFit) -> dict:
    """The content of ``fit.json``."""
    spec, lap, best = res.spec, res.laplace, res.best
    values = res.values
    params = {}
    for i, p in enumerate(spec.parameters):
        params[p.name] = dict(value=values[p.name], unit=p.unit, base=p.base, lower=p.lower,
                              upper=p.upper, transform=p.transform,
                              interval95=[float(lap.lower[i]), float(lap.upper[i])],
                              sd_transformed=float(lap.sd[i]), flags=lap.flags[p.name])
    return {
        "popsim_fit_record": 1,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": spec.source.get("command"), "config": spec.source.get("config"),
        "seed": spec.seed, "size": spec.size,
        "population_size": spec.population_size, "starts": spec.starts, "steps": spec.steps,
        "optimizer": spec.optimizer, "learning_rate": spec.learning_rate,
        "gradient": spec.gradient, "base_parameters": res.base_source,
        "versions": {"popsim": __version__, "model": MODEL_VERSION, **library_versions()},
        "studies": list(res.problem.study_ids()),
        "held_out": list(res.holdout.problem.study_ids()) if res.holdout else [],
        "split": {"fit": list(spec.studies), "held_out": list(spec.holdout),
                  "rule": "named on the command line; reserved studies are never read"},
        "nll": best.nll,
        "loss_per_study": {r["study"]: r["nll"] for r in study_rows(res) if r["split"] == "fit"},
        "prediction_per_study": {r["study"]: r["nll"] for r in study_rows(res)
                                 if r["split"] == "held-out"},
        "names": list(spec.names), "parameters": params,
        "transform": {p.name: p.transform for p in spec.parameters},
        "transform_definitions": TRANSFORMS,
        "mean_transformed": [float(x) for x in best.u],
        "covariance_transformed": lap.covariance.tolist(),
        "covariance_source": lap.source,
        "correlation": lap.correlation.tolist(),
        "hessian_method": spec.hessian,
        "hessian_eigenvalues": lap.eigenvalues.tolist(),
        "identifiability": lap.flags,
        "starts_detail": [dict(start=r.start, u0=r.u0.tolist(), nll=r.nll, steps=len(r.losses),
                               stopped=r.stopped, failed_patients=r.failed,
                               nonfinite_gradient_steps=r.nonfinite_steps,
                               steps_losing_patients=r.worse_failed_steps,
                               most_patients_lost=r.most_lost,
                               learning_rate_halvings=r.shortenings) for r in res.runs],
        "profiles": {p.name: dict(values=p.values.tolist(), delta_nll=p.delta_nll.tolist(),
                                  threshold=PROFILE_THRESHOLD, interval95=list(p.interval()),
                                  flat=p.flat) for p in res.profiles},
        "observations": observation_rows(res.train, "fit") + (
            observation_rows(res.holdout, "held-out") if res.holdout else []),
        "timing": {k: _num(round(v, 3)) if isinstance(v, float) else v
                   for k, v in res.timing.items()},
    }


def parameter_document(res: EvidenceFit, record_name: str = FIT_RECORD) -> tuple[str, dict]:
    """``(header, document)`` of ``parameters.toml``: every fitted quantity labelled
    ``status = "fitted"``, with its interval and the fit record it comes from."""
    from popsim.parameters import parameter_specs

    specs = {s.name: s for s in parameter_specs()}
    lap = res.laplace
    doc: dict = {"meta": {"fit_record": record_name, "popsim_version": __version__,
                          "model_version": MODEL_VERSION, "seed": res.spec.seed,
                          "nll": res.best.nll, "studies": list(res.spec.studies),
                          "held_out": list(res.spec.holdout),
                          "base_parameters": res.base_source},
                 "parameters": {}, "variability": {}}
    for i, p in enumerate(res.spec.parameters):
        v = res.values[p.name]
        entry = {"status": "fitted", "initial": p.base,
                 "interval95": [float(lap.lower[i]), float(lap.upper[i])]}
        if lap.flags[p.name]:
            entry["flags"] = lap.flags[p.name]
        if p.is_cv:
            doc["variability"][p.parameter] = {"cv": v, **entry}
        else:
            doc["parameters"][p.name] = {"value": v, "unit": p.unit, **entry,
                                         "description": specs[p.name].description}
    header = (f"# popsim parameter file written by `popsim calibrate --evidence`; read by "
              f"--params.\n# Fit record (studies, likelihood, intervals, covariance, versions, "
              f"command): {record_name} beside this file.\n")
    return header, doc


def write_fit(res: EvidenceFit, out: str | Path) -> list[Path]:
    """Write the fit directory (replacing ``out`` only when everything is written)."""
    from popsim.files import atomic_directory

    out = Path(out)
    with atomic_directory(out) as tmp:
        (tmp / FIT_RECORD).write_text(json.dumps(fit_record(res), indent=1) + "\n")
        header, doc = parameter_document(res)
        (tmp / PARAMETER_FILE).write_text(header + tomli_w.dumps(doc), encoding="utf-8")
        rows = fit_record(res)["observations"]
        with open(tmp / "observations.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows({k: (json.dumps(v) if isinstance(v, list) else v)
                         for k, v in r.items()} for r in rows)
        from popsim.calibration.figures import write_figures

        names = write_figures(res, tmp)
    return [out / n for n in (FIT_RECORD, PARAMETER_FILE, "observations.csv", *names)]


def correlation_summary(res: EvidenceFit, threshold: float = 0.9) -> list[tuple[str, str, float]]:
    """Pairs of fitted quantities with |correlation| above ``threshold``."""
    c = res.laplace.correlation
    names = res.spec.names
    return [(names[i], names[j], float(c[i, j])) for i in range(len(names))
            for j in range(i + 1, len(names)) if abs(c[i, j]) > threshold
            and np.isfinite(c[i, j])]
