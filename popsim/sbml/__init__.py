"""SBML Level 3 export of one virtual patient, generated from the same flux definitions as the
JAX vector field.

Nothing here restates the physiology. :func:`symbolic_model` calls the functions of
:mod:`popsim.model`, :mod:`popsim.protocols` and :mod:`popsim.observables` with SymPy symbols
instead of JAX arrays (the helpers of :mod:`popsim.physiology._math` dispatch on the argument
type), which yields every concentration, flux, rate and output as an expression; those are
printed as SBML L3 infix formulas and parsed into MathML by libSBML. A test evaluates the SBML
rates in libRoadRunner against :func:`popsim.model.derivatives`, so the two cannot drift.

Layout of the exported model (all ids are popsim's names; every list comes from the model's
definitions, so a new state, parameter, flux or output is exported without a change here):

* the states of :data:`popsim.model.STATE_NAMES` are SBML parameters with rate rules (units
  :data:`popsim.model.STATE_UNITS`; the aldosterone state is ``aldosterone_relative``, plasma
  aldosterone / 85 ng/L), their initial values at the patient's steady state on their baseline
  intake;
* every model parameter (the fields of :class:`popsim.parameters.Params`), with its value, unit,
  description, provenance and source (in the notes);
* the balancing constants of :func:`popsim.balance.derived` as assignment rules of the
  parameters, so the reference adult stays at steady state when a parameter is changed;
* the patient's covariates (:data:`popsim.sbml.symbolic.COVARIATES`: ``body_weight``,
  ``is_female``, ``egfr``, baseline intakes, chronic diuretic doses, ``hypertensive``, flags as
  0/1) as constants, and what :func:`popsim.model.make_patient` derives from them (``v_ecf``,
  ``gfr``, ``map_ref``, ``responsiveness``, ...) as assignment rules;
* the inputs acting at time ``t`` (:data:`popsim.inputs.CHANNELS`: ``mg_oral``, the Mg salts,
  ``k_oral``, ``na_oral``, ``mg_iv``, ``loop_dose_active``, ``thiazide_dose_active``) as
  assignment rules, piecewise constant in time when an arm's interventions are exported;
* every concentration and every named flux of :class:`popsim.model.Fluxes` as assignment rules
  (units read from the comments of their fields, :mod:`popsim.sbml.units`);
* every output of :data:`popsim.observables.OUTPUTS` (``serum_mg``, ``serum_phosphate``,
  ``map``, ...) under its own id, with the unit of :data:`popsim.outputs.OUTPUT_SPECS`;
* the helpers that stay functions (``softplus``) as function definitions.

A subexpression equal to another rule's formula is written as that rule's id, so each formula
reads like the model's wiring.
"""

from popsim.sbml.document import PatientSpec as PatientSpec
from popsim.sbml.document import consistency_errors as consistency_errors
from popsim.sbml.document import to_sbml as to_sbml
from popsim.sbml.document import write as write
from popsim.sbml.patients import cohort_covariates as cohort_covariates
from popsim.sbml.patients import cohort_patient as cohort_patient
from popsim.sbml.patients import patient_spec as patient_spec
from popsim.sbml.patients import reference_covariates as reference_covariates
from popsim.sbml.symbolic import COVARIATES as COVARIATES
from popsim.sbml.symbolic import INPUT_IDS as INPUT_IDS
from popsim.sbml.symbolic import SBML_LEVEL as SBML_LEVEL
from popsim.sbml.symbolic import SBML_VERSION as SBML_VERSION
from popsim.sbml.symbolic import STATE_IDS as STATE_IDS
from popsim.sbml.symbolic import Covariate as Covariate
from popsim.sbml.symbolic import ExportError as ExportError
from popsim.sbml.symbolic import SymbolicModel as SymbolicModel
from popsim.sbml.symbolic import make_patient as make_patient
from popsim.sbml.symbolic import symbolic_model as symbolic_model
from popsim.sbml.symbolic import to_formula as to_formula
from popsim.sbml.units import unit_id as unit_id
