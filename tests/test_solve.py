"""The solver: batched equals single, accuracy against a tight reference, mass balance in time,
per-patient failure codes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SCENARIO_BATCH, patients, timed_effects
from hypothesis import given, settings
from hypothesis import strategies as st

from popsim import batch, devices, model, protocols, solve
from popsim import config as cfg
from popsim.units import mg_to_mmol_mg

SETTINGS = solve.SolverSettings()
TS = jnp.arange(0.0, 91.0, 1.0)


@pytest.fixture(scope="module")
def mixed_batch():
    """Eight different patients and a protocol with a diet change and a supplement."""
    pb, pt = patients(egfr=[100, 25, 60, 120, 90, 45, 80, 15],
                      mg_intake_mg=[300, 150, 500, 250, 100, 350, 200, 400],
                      k_intake=[75, 60, 100, 50, 80, 70, 90, 65],
                      loop=[0, 0, 0.5, 0, 0, 0, 0, 0], thiazide=[0, 0, 0, 0, 0.5, 0, 0, 0],
                      female=[0, 1, 0, 1, 0, 1, 0, 1],
                      body_weight=[70, 60, 95, 55, 80, 65, 110, 75])
    prot = protocols.compile_segments(timed_effects(
        [(5.0, 40.0, {"mg_intake": mg_to_mmol_mg(20.0)}, {}),
         (40.0, 80.0, {}, {"mg_oral": mg_to_mmol_mg(400.0), "k_oral": 40.0})]), n_segments=8)
    y0, ok = devices.steady_states_with_fallback(pb, pt, SETTINGS)
    assert bool(ok.all())
    out, status, steps = batch.simulate_observe_jit(pb, pt, prot, y0, TS, SETTINGS)
    return pb, pt, prot, y0, out, np.asarray(status)


def test_batched_equals_loop_of_single_patients(mixed_batch):
    pb, pt, prot, y0, out, status = mixed_batch
    assert (status == solve.Status.OK).all()
    single = jax.jit(lambda p, q, y: solve.simulate(p, q, prot, y, TS, SETTINGS))
    for i in range(SCENARIO_BATCH):
        p_i = jax.tree.map(lambda x, i=i: x[i], pb)
        q_i = jax.tree.map(lambda x, i=i: x[i], pt)
        ys, st, _ = single(p_i, q_i, y0[i])
        obs = solve.observe_series(p_i, q_i, prot, TS, ys)
        for name in ("serum_mg", "serum_k", "intracellular_na", "urine_k"):
            np.testing.assert_allclose(np.asarray(out[name][i]), np.asarray(obs[name]),
                                       rtol=1e-8, err_msg=f"patient {i} {name}")


def test_a_patient_has_the_same_bits_in_any_lane_group(mixed_batch, monkeypatch):
    """The time course runs in groups of lanes (batch.simulate_observe_in_groups): five copies
    of the eight patients, in groups of at most 16 lanes (three groups, each copy at other
    places in them), give every output bit for bit as the eight alone (two groups)."""
    pb, pt, prot, y0, out, status = mixed_batch
    monkeypatch.setattr(batch, "LANE_GROUP_CPU", 16)
    tile = lambda x: jnp.concatenate([x] * 5)  # noqa: E731
    many = jax.jit(lambda p, q, y: batch.simulate_observe_in_groups(p, q, prot, y, TS, SETTINGS))
    got, got_status, _ = many(jax.tree.map(tile, pb), jax.tree.map(tile, pt), tile(y0))
    assert batch.lane_groups(40, "cpu") == (3, 16)
    np.testing.assert_array_equal(np.asarray(got_status), np.tile(status, 5))
    for name, v in out.items():
        for copy in range(5):
            np.testing.assert_array_equal(np.asarray(got[name])[8 * copy: 8 * copy + 8],
                                          np.asarray(v), err_msg=f"{name}, copy {copy}")


@given(st.integers(1, 5000))
@settings(max_examples=200, deadline=None)
def test_lane_groups_cover_the_batch_in_aligned_widths(n):
    groups, width = batch.lane_groups(n, "cpu")
    assert groups >= 2 and width % batch.LANE_ALIGN == 0
    assert groups * width >= n  # every lane has a place
    assert n <= batch.LANE_ALIGN or (groups - 1) * width < n  # no group of padding only
    assert width <= max(batch.LANE_GROUP_CPU, batch.LANE_ALIGN)
    assert batch.lane_groups(n, "gpu")[0] == 2


def test_batched_agrees_with_tight_reference(mixed_batch):
    """Default tolerances vs rtol 1e-10 single-patient solves: agreement to 1e-4 relative."""
    pb, pt, prot, y0, out, status = mixed_batch
    tight = dataclasses.replace(SETTINGS, rtol=1e-10, atol=1e-12, newton_rtol=1e-8,
                                newton_atol=1e-10, max_steps=200_000)
    single = jax.jit(lambda p, q, y: solve.simulate(p, q, prot, y, TS, tight))
    worst = 0.0
    for i in (0, 1, 2, 7):
        p_i = jax.tree.map(lambda x, i=i: x[i], pb)
        q_i = jax.tree.map(lambda x, i=i: x[i], pt)
        ys, st, _ = single(p_i, q_i, y0[i])
        assert int(st) == solve.Status.OK
        obs = solve.observe_series(p_i, q_i, prot, TS, ys)
        for name in ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_mg",
                     "intracellular_k", "intracellular_na", "pth"):
            rel = np.max(np.abs(np.asarray(out[name][i]) / np.asarray(obs[name]) - 1))
            worst = max(worst, rel)
    assert worst < 1e-4, worst


def test_mass_balance_during_simulation(mixed_batch):
    """change in body content = integral of (in - out), through every intervention."""
    pb, pt, prot, y0, out, status = mixed_batch
    run = jax.jit(jax.vmap(lambda p, q, y: solve.simulate(p, q, prot, y, TS, SETTINGS,
                                                          track_balance=True)))
    ys, st, _ = run(pb, pt, y0)
    contents = jax.vmap(jax.vmap(model.body_contents, in_axes=(0, None, None)))(
        ys[..., : model.N_STATES], pb, pt)
    names = ("Mg", "K", "Na", "ECF phosphate")  # what observables.balance_rates balances
    body = dict(zip(names, (np.asarray(b) for b in contents), strict=True))
    ys = np.asarray(ys)
    for j, name in enumerate(names):
        change = body[name] - body[name][:, :1]
        cumulative = ys[..., model.N_STATES + j]
        err = np.max(np.abs(change - cumulative) / body[name])
        assert err < 1e-6, f"{name}: relative mass-balance error {err:.2e}"
        # the protocol really moved mmol in and out (phosphate follows Mg and Ca only a little)
        assert np.max(np.abs(change)) > (0.1 if name == "ECF phosphate" else 1.0)


def test_depletion_protocol_really_depletes(mixed_batch):
    _, _, _, _, out, _ = mixed_batch
    mg = np.asarray(out["serum_mg"])
    assert np.all(mg[:, 39] < mg[:, 4])  # Mg-free diet from day 5 to 40
    assert np.all(mg[:, 79] > mg[:, 39])  # supplement from day 40


def test_failing_patient_gets_status_not_crash(mixed_batch):
    pb, pt, prot, y0, _, _ = mixed_batch
    starved = dataclasses.replace(SETTINGS, max_steps=20)
    _, status, _ = batch.simulate_observe_jit(pb, pt, prot, y0, TS, starved)
    status = np.asarray(status)
    assert (status == solve.Status.MAX_STEPS).any()
    assert set(np.unique(status)) <= {solve.Status.OK, solve.Status.MAX_STEPS}


def _hard_patients():
    """Mg loads with failing kidneys, where Newton from the textbook state fails, beside easy
    patients. (Severe chronic Mg deficiency, < 15 mg/day, together with a loop diuretic or eGFR
    < 10 has no steady state the fallback finds either: such patients fail with a status.)"""
    return patients(mg_intake_mg=[5, 3000, 300, 2500, 5, 3000, 300, 2500],
                    egfr=[100, 10, 100, 15, 100, 10, 100, 15])


@pytest.mark.slow
def test_steady_state_fallback_rescues_newton_failures():
    """Extreme patients where plain Newton from the textbook state fails are still solved,
    and agree with the Newton solution where both converge."""
    pb, pt = _hard_patients()
    y_newton, ok_newton = batch.steady_states_jit(pb, pt, SETTINGS)
    assert not bool(ok_newton.all()), "choose harder patients: Newton alone solved them all"
    y_fb, ok_fb = batch.steady_states_fallback_jit(pb, pt, SETTINGS)
    assert bool(ok_fb.all())
    both = np.asarray(ok_newton & ok_fb)
    # atol: the K adaptation log-gain sits at 0 in some of them, where both are rounding noise
    np.testing.assert_allclose(np.asarray(y_newton)[both], np.asarray(y_fb)[both], rtol=1e-8,
                               atol=1e-12)
    # d/dt in the solver's normalised coordinates (the adaptation log-gain may be 0)
    resid = jax.vmap(lambda y, p, q: jnp.stack(model.derivatives(y, p, q,
                                                                 model.baseline_inputs(q)))
                     / model.state_scale(p, q))(y_fb, pb, pt)
    assert float(jnp.max(jnp.abs(resid))) < 1e-8


@pytest.mark.slow
def test_fallback_runs_on_gathered_failures_only(monkeypatch):
    """steady_states_with_fallback retries only Newton's failures, in fixed-size buckets, and
    puts each answer back at its patient: same states as the fallback run on the whole batch."""
    pb, pt = _hard_patients()
    _, ok_newton = batch.steady_states_jit(pb, pt, SETTINGS)
    y_all, _ = batch.steady_states_fallback_jit(pb, pt, SETTINGS)
    monkeypatch.setattr(devices, "FALLBACK_BUCKET", 2)  # several buckets, the last one padded
    y, ok = devices.steady_states_with_fallback(pb, pt, SETTINGS)
    assert bool(ok.all()) and int((~ok_newton).sum()) >= 2
    failed = ~np.asarray(ok_newton)
    np.testing.assert_allclose(np.asarray(y)[failed], np.asarray(y_all)[failed], rtol=1e-8)


@pytest.mark.slow
def test_fallback_of_device_parts_runs_once_and_gives_the_same_bits(monkeypatch):
    """Cut over two devices, the Newton failures of both parts are retried together on the first
    part's device and put back on their own: the same bits as the batch solved whole."""
    pb, pt = _hard_patients()
    monkeypatch.setattr(devices, "FALLBACK_BUCKET", 2)
    _, ok_newton = batch.steady_states_jit(pb, pt, SETTINGS)
    failed = ~np.asarray(ok_newton)
    assert failed[:4].any() and failed[4:].any(), "both parts must need the fallback"
    y_whole, ok_whole = devices.steady_states_with_fallback(pb, pt, SETTINGS)
    devs = jax.devices()[:2]
    calls = []
    real = batch.steady_states_fallback_jit
    monkeypatch.setattr(batch, "steady_states_fallback_jit",
                        lambda p, q, s: calls.append(jax.tree.leaves(p)[0].devices()) or
                        real(p, q, s))
    got = devices.parts_steady_states(devices.place_parts((pb, pt), devs), SETTINGS)
    assert all(d == {devs[0]} for d in calls)  # every bucket on the first device
    assert len(calls) == -(-int(failed.sum()) // 2)  # buckets of 2 over all parts' failures
    assert [y.devices() for y, _ in got] == [{d} for d in devs]
    np.testing.assert_array_equal(np.concatenate([np.asarray(y) for y, _ in got]), y_whole)
    np.testing.assert_array_equal(np.concatenate([np.asarray(ok) for _, ok in got]), ok_whole)


def _exact(t):
    return jnp.stack([1 / (1 + t), jnp.exp(jnp.sin(t))])


def _vf_exact(t, y, args):
    """Nonlinear, non-autonomous and (mildly) stiff, with the solution :func:`_exact`."""
    g = _exact(t)
    return jnp.stack([-y[0] ** 2 - 10.0 * (y[0] - g[0]) + 0.5 * (y[1] - g[1]),
                      jnp.cos(t) * y[1] + (y[0] - g[0]) * y[1]])


@pytest.mark.parametrize(("name", "order", "dense_order"), [
    ("Rodas4", 4, 3), ("Rodas4P", 4, 3), ("Rodas5P", 5, 4), ("Ros3P", 3, 3)])
def test_rosenbrock_convergence_order(name, order, dense_order):
    """With constant steps h = 2/64 and 2/128 on [0, 2], the error at the step ends falls by
    2^order and between steps (dense output at 0.37 h into each step) by at least
    2^dense_order: the transcribed tableaus have their published orders."""
    import diffrax as dfx

    from popsim import rosenbrock

    solver = getattr(rosenbrock, name)()
    errors = []
    for n in (64, 128):
        h = 2.0 / n
        ends = jnp.arange(1, n + 1) * h
        inside = jnp.arange(n) * h + 0.37 * h
        ts = jnp.sort(jnp.concatenate([ends, inside]))
        sol = dfx.diffeqsolve(dfx.ODETerm(_vf_exact), solver, 0.0, 2.0, h, _exact(0.0),
                              stepsize_controller=dfx.ConstantStepSize(),
                              saveat=dfx.SaveAt(ts=ts), max_steps=1000)
        err = jnp.max(jnp.abs(sol.ys - jax.vmap(_exact)(ts)), axis=1)
        is_end = jnp.isin(ts, ends)
        errors.append((float(jnp.max(jnp.where(is_end, err, 0))),
                       float(jnp.max(jnp.where(is_end, 0, err)))))
    observed = np.log2(np.array(errors[0]) / np.array(errors[1]))
    assert abs(observed[0] - order) < 0.25, observed
    assert observed[1] > dense_order - 0.3, observed


def test_rosenbrock_time_derivative_matters():
    """The d_i h df/dt terms are needed for the order on a non-autonomous problem (popsim's
    vector field is autonomous within each step and leaves them out)."""
    import diffrax as dfx

    from popsim import rosenbrock

    errs = {}
    for td in (True, False):
        e = []
        for n in (64, 128):
            sol = dfx.diffeqsolve(dfx.ODETerm(_vf_exact), rosenbrock.Rodas5P(time_derivative=td),
                                  0.0, 2.0, 2.0 / n, _exact(0.0),
                                  stepsize_controller=dfx.ConstantStepSize(), max_steps=1000)
            e.append(float(jnp.max(jnp.abs(sol.ys[-1] - _exact(2.0)))))
        errs[td] = np.log2(e[0] / e[1])
    assert errs[True] > 4.7 and errs[False] < 4.0, errs


def test_rosenbrock_any_lineax_solver_and_forward_only():
    """The linear solver is any lineax solver (LAPACK's LU agrees with SmallLU to rounding); a
    solve backwards in time, which the step does not support, gives NaN, not a wrong value."""
    import diffrax as dfx
    import lineax as lx

    from popsim import rosenbrock

    def solve_with(solver, t0, t1):
        return dfx.diffeqsolve(dfx.ODETerm(_vf_exact), solver, t0, t1, (t1 - t0) / 64,
                               _exact(t0), stepsize_controller=dfx.ConstantStepSize(),
                               max_steps=100).ys[-1]

    small = solve_with(rosenbrock.Rodas5P(), 0.0, 2.0)
    lapack = solve_with(rosenbrock.Rodas5P(linear_solver=lx.LU()), 0.0, 2.0)
    np.testing.assert_allclose(np.asarray(lapack), np.asarray(small), rtol=1e-12)
    assert float(jnp.max(jnp.abs(small - _exact(2.0)))) < 1e-6
    assert np.all(np.isnan(np.asarray(solve_with(rosenbrock.Rodas5P(), 2.0, 0.0))))


def test_rosenbrock_rejects_what_it_does_not_solve():
    """Terms other than an ODETerm, a linear solver that is not a lineax solver, inconsistent
    tableaus; and the stiffly-accurate property the class docstrings state."""
    import diffrax as dfx

    from popsim import rosenbrock

    term = dfx.ODETerm(_vf_exact)
    with pytest.raises(ValueError, match="not compatible"):
        dfx.diffeqsolve(dfx.MultiTerm(term, term), rosenbrock.Rodas5P(), 0.0, 1.0, 0.1,
                        _exact(0.0))
    with pytest.raises(TypeError, match="lineax"):
        rosenbrock.Rodas5P(linear_solver="gauss")
    tab = rosenbrock.RODAS4
    with pytest.raises(ValueError, match="b_sol has shape"):
        dataclasses.replace(tab, b_sol=tab.b_sol[:-1])
    with pytest.raises(ValueError, match="a is not strictly lower"):
        dataclasses.replace(tab, a=tab.a + np.eye(tab.num_stages))
    with pytest.raises(ValueError, match=r"H has shape"):
        dataclasses.replace(tab, H=tab.H[:, :-1])
    assert {c.__name__: c.tableau.stiffly_accurate for c in (
        rosenbrock.Rodas4, rosenbrock.Rodas4P, rosenbrock.Rodas5P, rosenbrock.Ros3P)} == {
        "Rodas4": True, "Rodas4P": True, "Rodas5P": True, "Ros3P": False}


def test_rosenbrock_rejected_steps_leave_gradients_finite():
    """y' = -k sqrt(y), y(0) = 1 over [0, 1.9] from a first step of 1.9: the early steps'
    stages leave the domain (sqrt of a negative number), are rejected and shrink. The
    derivative of y(1.9) = (1 - 1.9 k / 2)^2 in k, -0.095 at k = 1, comes out of reverse mode
    (recursive checkpointing) and forward mode alike: the discarded steps' non-finite
    linearisations carry no tangent (before, reverse mode gave NaN)."""
    import diffrax as dfx

    from popsim import rosenbrock

    def y_end(k, adjoint):
        sol = dfx.diffeqsolve(
            dfx.ODETerm(lambda t, y, k: -k * jnp.sqrt(y)),
            rosenbrock.Rodas5P(time_derivative=False), 0.0, 1.9, 1.9, jnp.array([1.0]),
            args=k, adjoint=adjoint, max_steps=200,
            stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-10))
        return sol.ys[-1, 0], sol.stats["num_rejected_steps"]

    with jax.enable_x64(True):
        k = jnp.float64(1.0)
        value, rejected = y_end(k, dfx.RecursiveCheckpointAdjoint())
        reverse = jax.grad(lambda k: y_end(k, dfx.RecursiveCheckpointAdjoint())[0])(k)
        forward = jax.jacfwd(lambda k: y_end(k, dfx.ForwardMode())[0])(k)
    assert int(rejected) > 0
    assert float(value) == pytest.approx(0.05**2, rel=1e-6)
    assert float(reverse) == pytest.approx(-0.095, rel=1e-6)
    assert float(forward) == pytest.approx(-0.095, rel=1e-6)


@jax.jit  # one small compilation per n (op by op, the 40 examples took 24 s)
def _small_lu_solves(A, b):
    """``A x = b`` and ``A^T x = b`` with popsim.linear.SmallLU."""
    import lineax as lx

    from popsim.linear import SmallLU

    op = lx.MatrixLinearOperator(A)
    x = lx.linear_solve(op, b, SmallLU()).value
    state, _ = SmallLU().transpose(SmallLU().init(op, {}), {})
    return x, SmallLU().compute(state, b, {})[0]


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_small_lu_solves_and_transposed_solves(n, seed):
    """popsim.linear.SmallLU (popsim's linear solver) against numpy, including the
    transposed solve that the implicit-function-theorem gradient of the steady state uses."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) + n * np.eye(n) * rng.choice([-1.0, 1.0])
    b = rng.normal(size=n)
    with jax.enable_x64(True):
        x, xt = _small_lu_solves(jnp.asarray(A), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(xt), np.linalg.solve(A.T, b), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(cfg.SOLVERS))
def test_every_solver_a_config_names_is_built(name):
    """The config's solver list is the one list: each name builds its class, Rosenbrock steps
    and implicit stages with SmallLU, and any other name is refused."""
    import diffrax as dfx

    from popsim.linear import SmallLU

    built = solve._make_solver(dataclasses.replace(SETTINGS, solver=name))
    family, cls = cfg.SOLVERS[name]
    assert isinstance(built, dfx.AbstractSolver) and type(built).__name__ == cls
    if family == "rosenbrock":
        assert isinstance(built.linear_solver, SmallLU)
    if family == "implicit":
        assert isinstance(built.root_finder.linear_solver, SmallLU)
    with pytest.raises(ValueError, match="is not one of"):
        solve.solver_class(name + "x")


def test_collapse_event_flags_emptied_pools_and_non_finite_states_only():
    """The fallback gives up on a patient once a pool or hormone has fallen a million-fold below
    its reference (or a state is not finite); the K adaptation log-gain may be negative."""
    x = np.ones(model.N_STATES)
    assert not bool(solve._collapsed(0.0, jnp.asarray(x), None))
    x[model.K_ADAPTATION] = -3.0  # a log-gain, not a pool
    assert not bool(solve._collapsed(0.0, jnp.asarray(x), None))
    for i in range(model.N_STATES):
        if model.POSITIVE[i]:
            y = x.copy()
            y[i] = 0.5 * solve.COLLAPSED
            assert bool(solve._collapsed(0.0, jnp.asarray(y), None)), i
            y[i] = 2.0 * solve.COLLAPSED  # depleted, but not yet given up on
            assert not bool(solve._collapsed(0.0, jnp.asarray(y), None)), i
    y = x.copy()
    y[model.K_ADAPTATION] = np.nan
    assert bool(solve._collapsed(0.0, jnp.asarray(y), None))
