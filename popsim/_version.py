__version__ = "0.1.0"
MODEL_VERSION = "2.0"


def library_versions() -> dict[str, str]:
    """Versions of the numerical libraries a result depends on (recorded in output files)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("jax", "jaxlib", "diffrax", "equinox", "optimistix", "lineax", "optax", "numpy",
                 "h5py"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
