__version__ = "0.1.0"
MODEL_VERSION = "1.0"
