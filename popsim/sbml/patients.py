"""Which patient is exported: the reference adult, or a patient of a cohort file, with their
steady state solved by popsim."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from popsim._version import MODEL_VERSION
from popsim.facts import REFERENCE_ADULT
from popsim.parameters import Params
from popsim.protocols import Protocol
from popsim.sbml.document import PatientSpec
from popsim.sbml.symbolic import COVARIATES, ExportError, make_patient

# --- which patient -------------------------------------------------------------------------

def _steady_state(params: Params, covariates: dict) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    from popsim import devices, solve

    with jax.enable_x64(True):
        one = lambda v: jnp.asarray([v], jnp.float64)  # noqa: E731
        batch = jax.tree.map(one, params)
        pt = make_patient(batch, {k: one(v) for k, v in covariates.items()})
        y0, ok = devices.steady_states_with_fallback(batch, pt, solve.SolverSettings())
        if not bool(ok[0]):
            raise ExportError("the patient has no steady state on their baseline intake "
                              "(popsim status steady_state_failed); nothing to export")
        return np.asarray(y0[0], np.float64)


def reference_covariates() -> dict:
    """:data:`popsim.facts.REFERENCE_ADULT`'s covariates in model units."""
    from popsim.units import mg_to_mmol_mg

    a = REFERENCE_ADULT
    return dict(body_weight=a.body_weight, is_female=float(a.is_female), egfr=a.egfr,
                mg_intake=mg_to_mmol_mg(a.mg_intake_mg), k_intake=a.k_intake,
                na_intake=a.na_intake, loop_dose=0.0, thiazide_dose=0.0, hypertensive=0.0)


def patient_spec(params: Params, covariates: dict, protocol: Protocol | None = None,
                 title: str = "patient", notes: tuple[str, ...] = ()) -> PatientSpec:
    """A :class:`PatientSpec` with its steady state solved by popsim (Newton, with the
    pseudo-transient fallback)."""
    return PatientSpec(params, dict(covariates), _steady_state(params, covariates), protocol,
                       title, notes)


def cohort_covariates(cohort, i: int) -> dict:
    """The :data:`COVARIATES` of patient ``i`` of a sampled :class:`popsim.population.Cohort`,
    in model units."""
    pt, cov = cohort.patients, cohort.covariates
    value = lambda x: float(np.asarray(x)[i])  # noqa: E731
    out = dict(body_weight=value(pt.body_weight), is_female=float(value(cov["sex"]) == 0),
               egfr=value(cov["egfr"]), mg_intake=value(pt.mg_intake),
               k_intake=value(pt.k_intake), na_intake=value(pt.na_intake),
               loop_dose=value(pt.loop_dose), thiazide_dose=value(pt.thiazide_dose),
               hypertensive=float(value(cov["hypertension"]) == 1))
    assert tuple(out) == tuple(c.name for c in COVARIATES), "one value per covariate"
    return out


def cohort_patient(path: str | Path, index: int, param_set, arm: str | None = None):
    """The :class:`PatientSpec` of patient ``index`` of the cohort file ``path``: re-drawn from
    the file's config and seed (each patient has their own random streams), checked against the
    covariates stored in the file. ``param_set`` must be the parameter set of the run (its
    SHA-256 fingerprint is compared with the file's)."""
    import jax

    from popsim import config as cfg
    from popsim import store
    from popsim.parameters.io import fingerprint
    from popsim.population import sample_cohort
    from popsim.protocols import protocols_for

    try:
        attrs = store.read_attrs(path)
        cohort = store.open_cohort(path)
    except store.StoreError as e:
        raise ExportError(f"--cohort {path}: {e}") from None
    if str(attrs.get("model_version")) != MODEL_VERSION:
        raise ExportError(f"--cohort {path}: written by model version "
                          f"{attrs.get('model_version')!r}; this popsim exports model version "
                          f"{MODEL_VERSION}")
    n = int(attrs["n_patients"])
    if not 0 <= index < n:
        raise ExportError(f"--patient {index}: outside the cohort of {path} "
                          f"(allowed: 0 .. {n - 1})")
    if str(attrs.get("params_fingerprint")) != fingerprint(param_set.params, param_set.cvs):
        raise ExportError(f"--cohort {path}: was run with other parameters "
                          f"(params_source {attrs.get('params_source')!r}); pass the same "
                          "--params")
    config = cfg.parse_config(__import__("tomllib").loads(str(attrs["config"])))
    with jax.enable_x64(True):
        # a screened run's patient ``index`` is the candidate it enrolled
        drawn = sample_cohort(config.population, int(attrs["seed"]),
                              int(cohort.candidates[index]), 1, param_set.params, param_set.cvs)
        stored = float(cohort.covariate("egfr")[index])
        if not np.isclose(float(drawn.covariates["egfr"][0]), stored, rtol=1e-12):
            raise ExportError(f"--cohort {path}: patient {index}'s stored eGFR ({stored:g}) "
                              "does not match its config and seed; the file was not written "
                              "by this popsim version")
        params = jax.tree.map(lambda x: float(np.asarray(x)[0]), drawn.params)
        covariates = cohort_covariates(drawn, 0)
        protocol = None
        if arm is not None:
            names = [a.name for a in config.arms]
            if arm not in names:
                raise ExportError(f"--arm {arm!r}: not an arm of {path} (allowed: "
                                  f"{', '.join(names)})")
            protocol = protocols_for(config.arms, config.simulation.days,
                                     jax.numpy.float64)[names.index(arm)]
            if protocol.titration is not None:
                raise ExportError(f"--arm {arm!r}: its dose is titrated at visits during the "
                                  "solve, which SBML inputs cannot express; export another arm")
    notes = (f"Patient {index} of cohort file {Path(path).name} (seed {attrs['seed']}, "
             f"{n} patients); parameters: {attrs.get('params_source')}.",
             "Covariates: " + ", ".join(f"{k} = {v:g}" for k, v in covariates.items()),
             f"Interventions: arm {arm!r}." if arm else "No intervention (baseline).")
    return patient_spec(params, covariates, protocol, f"patient {index} of {Path(path).name}",
                        notes)
