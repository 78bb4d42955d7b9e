"""SBML Level 3 export of one virtual patient, generated from the same flux definitions as the
JAX vector field.

Nothing here restates the physiology. :func:`symbolic_model` calls the functions of
:mod:`popsim.model`, :mod:`popsim.protocols` and :mod:`popsim.observables` with SymPy symbols
instead of JAX arrays (the helpers of :mod:`popsim.physiology._math` dispatch on the argument
type), which yields every concentration, flux, rate and output as an expression; those are
printed as SBML L3 infix formulas and parsed into MathML by libSBML. A test evaluates the SBML
rates in libRoadRunner against :func:`popsim.model.derivatives`, so the two cannot drift.

Layout of the exported model (all ids are popsim's names):

* the 10 states are SBML parameters with rate rules (amounts in mmol, PTH in pmol/L, ECF volume
  in L; the aldosterone state is ``aldosterone_relative``, plasma aldosterone / 85 ng/L), their
  initial values at the patient's steady state on their baseline intake;
* every model parameter, with its value, unit, description and source (in the notes);
* the patient's covariates (``body_weight``, ``is_female``, ``egfr``, baseline intakes and
  chronic diuretic doses) as constants, and what popsim derives from them (``v_ecf``, ``v_icf``,
  ``gfr``, ``nephron_fraction``) as assignment rules;
* the inputs acting at time ``t`` (``mg_oral``, ``k_oral``, ``na_oral``, ``mg_iv``,
  ``loop_dose_active``, ``thiazide_dose_active``) as assignment rules, piecewise constant in
  time when an arm's interventions are exported;
* concentrations and every named flux of :class:`popsim.model.Fluxes` as assignment rules;
* every output of :data:`popsim.observables.OUTPUTS` (``serum_mg``, ``serum_k``, ``urine_mg``,
  ...) under its own id.
"""

from popsim.sbml.document import PatientSpec as PatientSpec
from popsim.sbml.document import consistency_errors as consistency_errors
from popsim.sbml.document import to_sbml as to_sbml
from popsim.sbml.document import unit_id as unit_id
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
from popsim.sbml.symbolic import ExportError as ExportError
from popsim.sbml.symbolic import SymbolicModel as SymbolicModel
from popsim.sbml.symbolic import symbolic_model as symbolic_model
from popsim.sbml.symbolic import to_formula as to_formula
