"""Global sensitivity analysis: Sobol' indices of model outputs with respect to parameters.

* :func:`sobol` is generic: ``evaluate(X) -> Y`` maps an ``(N, d)`` sample to ``(N,)`` or
  ``(N, k)`` outputs. SALib draws the Saltelli design from a scrambled Sobol' sequence
  (``SALib.sample.sobol``: ``n`` base points, ``n * (d + 2)`` rows; ``n * (2d + 2)`` with
  second-order indices) and estimates first-order (S1) and total (ST) indices with bootstrap
  confidence intervals (``SALib.analyze.sobol``: Saltelli 2010 for S1, Jansen for ST; an interval
  is ``z * SD`` of the index over ``n_bootstrap`` resamples of the base points). ``n`` must be a
  power of 2 (the Sobol' sequence's balance properties hold only then).
* :func:`model_setup` checks a question about the model (outputs, saved day, arm, parameters and
  ranges; one-line :class:`SensitivityError`, no JAX), and :func:`model_sobol` answers it.
* :func:`print_table` (ranked by ST), :func:`figure` and :func:`write_results` show and save a
  :class:`SobolResult`.

Modules: :mod:`~popsim.sensitivity.indices` (the estimation), :mod:`~popsim.sensitivity.model`
(the model question), :mod:`~popsim.sensitivity.output` (table, figure, files).

The model question. Every row of the design is one virtual patient:

* covariates: those of patient ``patient`` (default 0, the first patient ``popsim run`` would
  simulate) of the config's population drawn with the config's seed, the same for every row, so
  that only the parameters vary;
* parameters: the typical values of the parameter set (default: the shipped calibrated set,
  :func:`popsim.parameters.io.default_parameters`), without between-patient variability, the
  varied ones replaced by the row's values;
* ranges: by default multiplicative, the typical value times ``relative_range`` (0.5..2)
  clipped to the parameter's physical bounds, sampled uniformly in log(value) (a halving as
  likely as a doubling); explicit ``ranges`` are sampled uniformly in the value;
* simulation: the patient's steady state on its baseline intake, then the arm (default: the
  config's last) for the config's days with its solver; the output is read at a saved day, or as
  its change from the arm's day 0 (the steady state) with ``change=True``.

The design is solved as one cohort, in fixed-size chunks (the last padded), by
:func:`popsim.devices.simulate_arms`: the batched Newton, fallback and time course of ``popsim
run`` (only the chosen arm), compiled once before the first chunk (``compile_seconds``; the
steady-state fallback is compiled ahead, as by ``popsim run``, for designs of at least
:data:`popsim.devices.FALLBACK_AHEAD` patients, and otherwise when first needed, within
``run_seconds``, the time of the rest).

Failures: Sobol' estimators need every row. A patient whose solve fails is counted
(``n_failed``) and :func:`model_sobol` refuses (:class:`FailedEvaluations`) unless
``drop_failed=True``: then every base point whose rows (A, B and each A with one column of B)
hold a failure is dropped whole, and the indices are those of the remaining base points, i.e.
of the model where it solves (``n_dropped`` base points dropped).

Example::

    import popsim
    from popsim import sensitivity

    config, _ = popsim.load_config("configs/mg_depletion.toml")
    setup = sensitivity.model_setup(config, ["serum_k", "serum_mg"], day=90,
                                    parameters=["nka_km_mg", "romk_mg_kd", "mg_dct_half_load"])
    result = sensitivity.model_sobol(setup, n=256, seed=1)
    sensitivity.print_table(result)           # ranked by ST, one table per output
    result.ST[:, 0], result.ST_conf[:, 0]     # serum_k: total indices and 95% half-widths
    sensitivity.write_results(result, "sens") # sobol.json, sobol.csv, sobol.png
"""

from popsim.sensitivity.indices import (
    DEFAULT_BOOTSTRAP,
    FailedEvaluations,
    SensitivityError,
    SobolResult,
    sobol,
)
from popsim.sensitivity.model import (
    DEFAULT_CHUNK,
    DEFAULT_PARAMETERS,
    DEFAULT_RANGE,
    DEFAULT_SAMPLES,
    ModelSetup,
    ParameterRange,
    model_setup,
    model_sobol,
)
from popsim.sensitivity.output import figure, print_table, to_dict, write_csv, write_results

__all__ = ["DEFAULT_BOOTSTRAP", "DEFAULT_CHUNK", "DEFAULT_PARAMETERS", "DEFAULT_RANGE",
           "DEFAULT_SAMPLES", "FailedEvaluations", "ModelSetup", "ParameterRange",
           "SensitivityError", "SobolResult", "figure", "model_setup", "model_sobol",
           "print_table", "sobol", "to_dict", "write_csv", "write_results"]
