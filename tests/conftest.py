"""Shared fixtures. JIT compiles dominate the suite's time, so compiled solves are reused across
tests through session fixtures with fixed batch shapes."""

import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
# One temporary compile cache for the whole session (popsim's, popsim.compile_cache), shared with
# the `popsim` subprocesses the tests start (they inherit the environment): a program compiled
# once, in this process or another, is loaded instead of compiled again (the same executable, so
# the same bits), and nothing is written to the user's cache. POPSIM_CACHE_DIR set by the caller
# (a folder, or "off") is kept.
if not os.environ.get("POPSIM_CACHE_DIR", "").strip():
    _XLA_CACHE = tempfile.mkdtemp(prefix="popsim-tests-cache-")
    atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
    os.environ["POPSIM_CACHE_DIR"] = _XLA_CACHE

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # the suite runs in float64 (the default precision)

import jax.numpy as jnp  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

# JAX dispatch makes the first example of a property test slow: no per-example deadline.
hypothesis_settings.register_profile("popsim", deadline=None, max_examples=50)
hypothesis_settings.load_profile("popsim")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from popsim import batch, devices, model, population, solve  # noqa: E402
from popsim import config as cfg  # noqa: E402
from popsim.parameters import Params  # noqa: E402
from popsim.parameters.io import default_parameters  # noqa: E402
from popsim.units import mg_to_mmol_mg  # noqa: E402

SCENARIO_BATCH = 8  # every scenario batch is padded to this size: one compilation for all


MAX_MAPPINGS_KEPT = 15_000
"""Before and after every test, JAX's compiled programs are dropped if the process has more
memory mappings than this. Every compiled XLA:CPU program keeps its own mappings of JIT-compiled
code; the whole suite in one process reached the kernel's limit (vm.max_map_count, 65,530 by
default) and the next compilation aborted the process (in the calibration module, whose gradient
programs are the largest: the reverse-mode gradient check alone adds ~10,000 mappings, and a
check only between modules let the calibration module run past the limit). Dropping above
15,000 keeps a worker far below the limit; tests that use the same shapes (the scenario
batches, the small trial) still share their compiled programs while the count stays below it,
and a dropped program comes back from the on-disk cache (traced again, not compiled)."""


def _memory_mappings() -> int:
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no such limit to watch; clear after every module
        return MAX_MAPPINGS_KEPT + 1


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    if _memory_mappings() > MAX_MAPPINGS_KEPT:
        jax.clear_caches()
    yield
    if _memory_mappings() > MAX_MAPPINGS_KEPT:
        jax.clear_caches()


SOLVING_FIXTURES = frozenset({
    "small_trial", "reference_cohort", "api_cohort", "hypokalaemia_trial", "small_runs",
    "validation_report", "recovery", "truth_targets", "grad_problem", "central_differences",
    "mixed_batch", "mixed_cohort", "deficiency", "replicate_run", "model_result", "plausible",
    "exported", "popsim_courses", "evidence_report",
})
"""Fixtures that compile and run ODE solves (steady states, time courses, whole runs). A test
that uses one is marked ``slow`` (:func:`pytest_collection_modifyitems`): `make test-fast` runs
the tests that compile no solve of their own, in a few minutes; `make test` runs everything."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SOLVING_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def patients(params: Params = None, n: int = SCENARIO_BATCH, *, body_weight=70.0, female=False,
             egfr=100.0, mg_intake_mg=300.0, k_intake=75.0, na_intake=150.0, loop=0.0,
             thiazide=0.0, hypertensive=False):
    """A batch of ``n`` typical patients (no between-patient variability). Any covariate may be
    a scalar or a length-``n`` sequence."""
    params = default_parameters().params if params is None else params
    a = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float64), (n,))  # noqa: E731
    pt = model.make_patient(params, a(body_weight), jnp.broadcast_to(jnp.asarray(female), (n,)),
                            a(egfr), a(mg_to_mmol_mg(np.asarray(mg_intake_mg, float))),
                            a(k_intake), a(na_intake), a(loop), a(thiazide),
                            jnp.broadcast_to(jnp.asarray(hypertensive), (n,)))
    pb = jax.tree.map(lambda x: jnp.full((n,), x, jnp.float64), params)
    return pb, pt


def steady_observe(pb, pt, settings=solve.SolverSettings()):
    """Steady state of a batch and its observables (dict of (patient,) numpy arrays)."""
    y0, ok = devices.steady_states_with_fallback(pb, pt, settings)
    obs = batch.observe_baseline(pb, pt, y0)
    return y0, np.asarray(ok), {k: np.asarray(v) for k, v in obs.items()}


@pytest.fixture(scope="session")
def reference_config():
    conf, text = cfg.load_config("configs/reference_healthy.toml")
    return conf


@pytest.fixture(scope="session")
def reference_cohort(reference_config):
    """1024 reference-healthy patients at their steady states."""
    c = population.sample_cohort(reference_config.population, reference_config.population.seed,
                                 0, 1024)
    y0, ok, obs = steady_observe(c.params, c.patients)
    return c, y0, ok, obs


SMALL_TRIAL = """
[population]
size = 14
seed = 5
[population.covariates.egfr]
distribution = "uniform"
low = 20
high = 120
[simulation]
days = 10
output_interval_days = 1.0
[[arm]]
name = "control"
[[arm]]
name = "magnesium"
[[arm.intervention]]
kind = "oral_magnesium"
dose = 400
start_day = 2
end_day = 8
"""


@pytest.fixture(scope="session")
def small_trial(tmp_path_factory):
    """A 14-patient, two-arm, 10-day trial written with chunk size 7 (two chunks)."""
    import tomllib

    from popsim.run import run_cohort

    path = tmp_path_factory.mktemp("trial") / "trial.h5"
    conf = cfg.parse_config(tomllib.loads(SMALL_TRIAL))
    result = run_cohort(conf, SMALL_TRIAL, path, chunk_size=7, progress=False)
    return path, result


_DIET_CHANNEL = {"mg_intake": "mg_oral", "k_intake": "k_oral", "na_intake": "na_oral"}


def timed_effects(items):
    """``(start, end, diet, added)`` items (diet: intake name -> mmol/day replacing the
    baseline; added: channel -> amount) as the ``(start, end, effects)`` items of
    :func:`popsim.protocols.compile_segments`."""
    from popsim.interventions import Effect

    return [(start, end, [Effect(_DIET_CHANNEL[k], v, replace=True) for k, v in diet.items()]
             + [Effect(k, v) for k, v in added.items()]) for start, end, diet, added in items]


@pytest.fixture(scope="session")
def api_cohort(tmp_path_factory):
    """The small trial (same shapes as ``small_trial``, so the compiled programs are shared)
    run through ``popsim.simulate``: ``(path of the cohort file, the returned dataset)``."""
    import popsim

    path = tmp_path_factory.mktemp("api") / "trial.h5"
    ds = popsim.simulate(SMALL_TRIAL, out=path, chunk_size=7, progress=False)
    return path, ds


HYPOKALAEMIA_TRIAL = (pathlib.Path(__file__).resolve().parents[1] / "configs"
                      / "trial_hypokalaemia.toml").read_text().replace(
    "size = 1000", "size = 12").replace("days = 84", "days = 28")
"""configs/trial_hypokalaemia.toml with 12 patients for 4 weeks: screening on serum K and Mg,
K given twice a day and titrated weekly, Mg per kg once a day."""


@pytest.fixture(scope="session")
def hypokalaemia_trial(tmp_path_factory):
    """:data:`HYPOKALAEMIA_TRIAL` written in two chunks of 6 patients: ``(path, RunResult)``."""
    import tomllib

    from popsim.run import run_cohort

    path = tmp_path_factory.mktemp("hypokalaemia") / "trial.h5"
    conf = cfg.parse_config(tomllib.loads(HYPOKALAEMIA_TRIAL))
    result = run_cohort(conf, HYPOKALAEMIA_TRIAL, path, chunk_size=6, progress=False)
    return path, result


COUNTING = ("import json, sys\n"
            "from popsim.compilation import CompileCounter\n"
            "from popsim.cli import main\n"
            "with CompileCounter() as c:\n"
            "    rc = main(sys.argv[1:])\n"
            "print('COMPILE ' + json.dumps(c.summary()))\n"
            "sys.exit(rc)\n")


def counted_popsim(args, cache) -> dict:
    """Run ``popsim ARGS`` in a fresh process with the compile cache in ``cache``; returns its
    compile counts."""
    import json
    import subprocess
    import sys

    env = dict(os.environ, POPSIM_CACHE_DIR=str(cache))
    p = subprocess.run([sys.executable, "-c", COUNTING, *args], capture_output=True, text=True,
                       env=env, timeout=1200)
    assert p.returncode == 0, p.stderr[-2000:]
    line = next(x for x in p.stdout.splitlines() if x.startswith("COMPILE "))
    return json.loads(line.removeprefix("COMPILE "))


README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of one language, in order."""
    out, lines, inside = [], [], None
    for line in README.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, lines = line[3:].strip(), []
            else:
                if inside == language:
                    out.append("\n".join(lines))
                inside = None
        elif inside is not None:
            lines.append(line)
    return out


def readme_commands() -> list[list[str]]:
    """Every `popsim ...` command of the README's sh blocks (continuation lines joined, comments
    cut), without the leading `popsim`."""
    import shlex

    commands = []
    for block in readme_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["popsim"]:
                commands.append(words[1:])
    return commands


def readme_command(*prefix: str) -> list[str]:
    """The one README command that starts with ``prefix`` (a test fails if there is not
    exactly one)."""
    found = [c for c in readme_commands() if c[:len(prefix)] == list(prefix)]
    assert len(found) == 1, f"README: {len(found)} commands start with popsim {' '.join(prefix)}"
    return found[0]


def run_readme_command(argv: list[str], cwd, capture: tuple = ()):
    """Run a README command in-process in folder ``cwd``: ``(exit status, {name: value})``, the
    values being what each function named in ``capture`` (``(module, name)`` pairs) returned,
    so a test can check the command's printed results against the objects behind them."""
    from popsim.cli import main

    captured = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        for module, name in capture:
            real = getattr(module, name)

            def spy(*a, _real=real, _name=name, **k):
                captured[_name] = _real(*a, **k)
                return captured[_name]

            mp.setattr(module, name, spy)
        status = main(list(argv))
    return status, captured
