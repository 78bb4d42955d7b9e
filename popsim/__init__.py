"""popsim: a virtual-population simulator of magnesium, potassium and sodium homeostasis.

The public API (everything else is private and may change):
"""

from popsim._version import MODEL_VERSION as MODEL_VERSION
from popsim._version import __version__ as __version__
from popsim.config import ConfigError as ConfigError
from popsim.config import RunConfig as RunConfig
from popsim.config import load_config as load_config
from popsim.config import parse_config as parse_config
from popsim.model import STATE_NAMES as STATE_NAMES
from popsim.observables import OUTPUTS as OUTPUTS
from popsim.parameters import Params as Params
from popsim.parameters import parameter_specs as parameter_specs
from popsim.parameters.io import ParameterSet as ParameterSet
from popsim.parameters.io import default_parameters as default_parameters
from popsim.parameters.io import load_params_file as load_params_file
from popsim.population import sample_cohort as sample_cohort
from popsim.run import RunError as RunError
from popsim.run import run_cohort as run_cohort
from popsim.run import summarize as summarize
from popsim.solve import SolverSettings as SolverSettings
from popsim.solve import Status as Status
from popsim.store import open_cohort as open_cohort
