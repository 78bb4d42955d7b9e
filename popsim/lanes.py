"""Parameter replicates as lanes of a batch: the same sampled patients once per parameter set.

A run with ``R`` parameter replicates (``popsim run --uncertainty``) solves ``R * N`` lanes:
lane ``r * N + p`` is patient ``p`` (its covariates and between-patient draws, from the run's
seed, as in every replicate) with the typical values and between-patient CVs of replicate ``r``.
The parameters are per-lane arrays in the batch (:func:`popsim.population.sample_lanes`), so
lanes of several replicates share a compiled batch of fixed size and are chunked like patients;
a lane gets the same bits as the patient in a run with that replicate's parameter file
(``--params``), whatever the chunk size or device count.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim.parameters import parameter_specs
from popsim.parameters.io import ParameterSet
from popsim.parameters.uncertainty import CV_PREFIX, UncertainFit
from popsim.population import Cohort, omega, sample_lanes, variability
from popsim.store import Replicates


@dataclasses.dataclass(frozen=True)
class ReplicateLanes:
    """The replicates of a run, ready to be spread over lanes.

    Attributes:
        n_patients: ``N``.
        fit: the fit record; ``values``: ``(R, k)`` its replicates (:meth:`UncertainFit.draw`).
        typical: fitted parameter -> ``(R,)`` typical value per replicate.
        omegas: every parameter varying between patients in some replicate -> ``(R,)`` SD of
            log(theta_i) per replicate (0 where it does not vary).
    """

    n_patients: int
    fit: UncertainFit
    values: np.ndarray
    typical: dict[str, np.ndarray]
    omegas: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        """``R``."""
        return int(self.values.shape[0])

    @property
    def varying(self) -> list[str]:
        """The parameters stored per lane (``param_<name>``), sorted."""
        return sorted(self.omegas)

    def parameter_set(self, replicate: int) -> ParameterSet:
        """The parameter file of ``replicate``: a run with it as ``--params`` gives the
        replicate's cohort."""
        return self.fit.parameter_set(self.values[replicate])

    def cohort(self, pop: cfg.Population, seed: int, start: int, size: int) -> Cohort:
        """Lanes ``start .. start+size-1``; lanes past the last replicate (a padded chunk) are
        further patients of the last replicate and are discarded by the caller."""
        lane = np.arange(start, start + size, dtype=np.int64)
        r = np.minimum(lane // self.n_patients, self.count - 1)
        patient = lane - r * self.n_patients
        typical = dataclasses.replace(self.fit.base.params,
                                      **{k: v[r] for k, v in self.typical.items()})
        return sample_lanes(pop, seed, patient, typical,
                            {k: jnp.asarray(v[r], jnp.float64) for k, v in self.omegas.items()})


def replicate_lanes(pop: cfg.Population, fit: UncertainFit, values: np.ndarray,
                    n_patients: int) -> ReplicateLanes:
    """:class:`ReplicateLanes` of the replicates ``values`` (rows of :meth:`UncertainFit.draw`).

    Each replicate's CVs go through :func:`popsim.population.variability` (the config's scale
    and ``cv`` entries apply as in any run), and each SD is :func:`popsim.population.omega` of
    one CV, computed as :func:`popsim.population.individual_params` computes it (the same bits
    as a run with the replicate's parameter file)."""
    values = np.asarray(values, np.float64)
    sets = [fit.parameter_set(row) for row in values]
    cvs = [variability(pop, s.cvs) for s in sets]
    names = sorted(set().union(*cvs))
    typical = {n: np.array([getattr(s.params, n) for s in sets], np.float64)
               for n in fit.names if not n.startswith(CV_PREFIX)}
    omegas = {n: np.array([float(omega(c[n])) if n in c else 0.0 for c in cvs], np.float64)
              for n in names}
    return ReplicateLanes(n_patients, fit, values, typical, omegas)


REPLICATE_KEYS = ("n_replicates", "uncertainty_fingerprint")
"""What must match too between an interrupted replicate run and the run that finishes it."""


def replicate_attributes(fit: UncertainFit, replicates: int) -> dict:
    """The root attributes of a cohort file with parameter replicates."""
    return {"n_replicates": int(replicates), "uncertainty_fingerprint": fit.fingerprint(),
            "uncertainty_source": str(fit.path),
            "replicate_0": "the point estimate (the fit record's parameters.toml)",
            "replicates_drawn": "multivariate normal in the fit record's transformed space, "
                                "from the run's seed (popsim.parameters.uncertainty)"}


def file_replicates(lanes: ReplicateLanes) -> Replicates:
    """The replicate axis of the cohort file: the drawn values, and the fit record's files."""
    fit = lanes.fit
    specs = {s.name: s for s in parameter_specs()}

    def describe(name):
        p = name.removeprefix(CV_PREFIX)
        what = specs[p].description
        return what if p == name else f"between-patient CV of: {what}"

    return Replicates(
        fit.names, tuple(fit.units[n] for n in fit.names), lanes.values,
        descriptions={n: describe(n) for n in fit.names},
        records={"fit_record": (fit.text, f"fit record ({fit.path.name}) whose uncertainty the "
                                          "replicates sample"),
                 "fit_parameters": (fit.params_text, "the fit record's parameter file: the "
                                    "point estimate (replicate 0) and the rest of every "
                                    "replicate's parameters")})
