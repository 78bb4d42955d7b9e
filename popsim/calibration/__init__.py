"""Calibration of model parameters and population spread to reference ranges (optax)."""

from popsim.calibration.config import CalibrationConfig as CalibrationConfig
from popsim.calibration.config import load_calibration as load_calibration
from popsim.calibration.config import parse_calibration as parse_calibration
from popsim.calibration.fitting import FitResult as FitResult
from popsim.calibration.fitting import build_problem as build_problem
from popsim.calibration.fitting import fit as fit
from popsim.calibration.fitting import result_table as result_table
from popsim.calibration.fitting import write_outputs as write_outputs
