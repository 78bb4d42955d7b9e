"""popsim: a virtual-population simulator of magnesium, potassium and sodium homeostasis.

The public API is listed in :data:`__all__`; everything else is private and may change. Names
are imported on first use, so ``import popsim`` (and ``popsim --help``, or validating a config)
does not import JAX.

Running: :func:`simulate` (a config to an :class:`xarray.Dataset`), :func:`run_cohort` (to a
cohort file), :func:`check_config` (validate and estimate, writing nothing). Reading a cohort
file: :func:`open_dataset`, :func:`open_cohort`, :func:`summarize`. A virtual trial's file
(arms, enrolment screening, doses): :func:`screening_summary` (candidates screened and
enrolled, failures per criterion), :func:`responder_fractions` (per arm and day),
:func:`trial_figure` and :func:`write_trial_figure` (every arm side by side over time).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

# Equinox's runtime checks (inside diffrax) give NaN instead of a host callback: popsim's
# compiled programs must return at once so several devices run at the same time (see
# popsim.batch). Equinox reads this documented variable when it is first imported.
os.environ.setdefault("EQX_ON_ERROR", "nan")

from popsim._version import MODEL_VERSION as MODEL_VERSION
from popsim._version import __version__ as __version__

_LAZY = {
    "ConfigError": "popsim.config",
    "RunConfig": "popsim.config",
    "load_config": "popsim.config",
    "parse_config": "popsim.config",
    "STATE_NAMES": "popsim.model",
    "OUTPUTS": "popsim.observables",
    "Params": "popsim.parameters",
    "parameter_specs": "popsim.parameters",
    "ParameterSet": "popsim.parameters.io",
    "default_parameters": "popsim.parameters.io",
    "load_params_file": "popsim.parameters.io",
    "sample_cohort": "popsim.population",
    "RunError": "popsim.run",
    "RunOptions": "popsim.run",
    "run_cohort": "popsim.run",
    "summarize": "popsim.report",
    "SolverSettings": "popsim.solve",
    "Status": "popsim.facts",
    "open_cohort": "popsim.store",
    "Intervention": "popsim.interventions",
    "register_intervention": "popsim.interventions:register",
    "simulate": "popsim.api",
    "check_config": "popsim.api",
    "open_dataset": "popsim.dataset",
    "select_vpop": "popsim.vpop:select",
    "screening_summary": "popsim.trial_report",
    "responder_fractions": "popsim.trial_report",
    "trial_figure": "popsim.trial_report",
    "write_trial_figure": "popsim.trial_report",
}
"""Public name -> ``module`` or ``module:attribute`` it is imported from on first use."""
__all__ = ["MODEL_VERSION", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module_name, _, attribute = _LAZY[name].partition(":")
        value = getattr(importlib.import_module(module_name), attribute or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'popsim' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from popsim.api import check_config as check_config
    from popsim.api import simulate as simulate
    from popsim.config import ConfigError as ConfigError
    from popsim.config import RunConfig as RunConfig
    from popsim.config import load_config as load_config
    from popsim.config import parse_config as parse_config
    from popsim.dataset import open_dataset as open_dataset
    from popsim.facts import Status as Status
    from popsim.interventions import Intervention as Intervention
    from popsim.interventions import register as register_intervention  # noqa: F401
    from popsim.model import STATE_NAMES as STATE_NAMES
    from popsim.observables import OUTPUTS as OUTPUTS
    from popsim.parameters import Params as Params
    from popsim.parameters import parameter_specs as parameter_specs
    from popsim.parameters.io import ParameterSet as ParameterSet
    from popsim.parameters.io import default_parameters as default_parameters
    from popsim.parameters.io import load_params_file as load_params_file
    from popsim.population import sample_cohort as sample_cohort
    from popsim.report import summarize as summarize
    from popsim.run import RunError as RunError
    from popsim.run import RunOptions as RunOptions
    from popsim.run import run_cohort as run_cohort
    from popsim.solve import SolverSettings as SolverSettings
    from popsim.store import open_cohort as open_cohort
    from popsim.trial_report import responder_fractions as responder_fractions
    from popsim.trial_report import screening_summary as screening_summary
    from popsim.trial_report import trial_figure as trial_figure
    from popsim.trial_report import write_trial_figure as write_trial_figure
    from popsim.vpop import select as select_vpop  # noqa: F401
