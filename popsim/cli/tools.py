"""``popsim check``, ``popsim info`` and ``popsim vpop``: the commands that inspect configs,
definitions and cohorts. Every table is generated from the one definition of what it lists
(:data:`popsim.outputs.OUTPUT_SPECS`, :data:`popsim.covariates.COVARIATES`, the fields of
:class:`popsim.parameters.Params`, :data:`popsim.interventions.REGISTRY`)."""

from __future__ import annotations

import math

from popsim.cli.commands import _fail


def _table(title: str, columns: list[str], rows) -> None:
    from rich.table import Table

    from popsim.progress import console

    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold", no_wrap=c == "name")
    for row in rows:
        t.add_row(*row)
    console().print(t)


def _number(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "-"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_check(args) -> int:
    from popsim.api import FIRST_CHUNK_SECONDS, RUN_PATIENT_DAYS_PER_SECOND, check_config
    from popsim.config import ConfigError
    from popsim.run import RunError

    try:
        result = check_config(args.config, size=args.size, seed=args.seed,
                              devices=args.devices)
    except (ConfigError, RunError) as e:
        return _fail(e)
    conf = result.config
    sim = conf.simulation
    print(f"{args.config}: valid. {result.n_patients:,} patients, {sim.days:g} days "
          f"({sim.n_times} saved times), arms: {', '.join(a.name for a in conf.arms)}; "
          f"{len(conf.output.saved)} outputs saved")
    if result.screened:
        _print_criteria(result)
        title = (f"candidates before screening (the first {result.n_sampled:,} the run "
                 "screens; the enrolled cohort differs)")
    else:
        sampled = (f"{result.n_sampled:,} patients" if result.n_sampled == result.n_patients
                   else f"the first {result.n_sampled:,} of {result.n_patients:,} patients")
        title = f"population (sampled: {sampled})"
    rows = []
    for c in result.covariates:
        if c.fractions is not None:
            shares = ", ".join(f"{k} {100 * v:.1f}%" for k, v in c.fractions.items())
            rows.append((c.name, c.unit, c.source, "", "", "", "", "", "", "", shares))
        else:
            q = [_number(v) for v in (c.quantiles or {}).values()]
            rows.append((c.name, c.unit, c.source, _number(c.mean), _number(c.sd), *q, ""))
    _table(title,
           ["name", "unit", "from", "mean", "SD", "5%", "25%", "50%", "75%", "95%",
            "categories"], rows)
    per_device = f"{result.patient_days_per_second:,.0f}"
    if result.dose_edges_per_day:
        per_device += (f" (not {RUN_PATIENT_DAYS_PER_SECOND:,}: {result.dose_edges_per_day:g} "
                       "starts and ends of periodic doses per arm-day, where the solver restarts)")
    least, most = _duration(result.expected_seconds), _duration(result.expected_seconds_max)
    run_time = f"about {least}" if least == most else f"at least {least}, at most {most}"
    print(f"expected run time: {run_time} on "
          f"{result.devices} device(s) for {result.patient_days:,.0f} patient-days (estimate: "
          f"{FIRST_CHUNK_SECONDS:g} s to the first chunk, then {per_device} patient-days/s "
          "per device, measured on a 2-core CPU, benchmarks/RESULTS.md; not measured here)")
    if result.screened:
        print(_screening_time(result))
    print(f"outputs before compression: {result.output_bytes / 1e9:.3g} GB (float32)")
    return 0


def _print_criteria(result) -> None:
    """The enrolment criteria, one line each, and what the check knows of the fraction
    enrolled."""
    m = result.n_sampled
    print("enrolment criteria (inclusion: every one must hold; exclusion: none may hold):")
    for c in result.criteria:
        if c.on_output:
            note = "an output: applied at each candidate's baseline steady state during the run"
        else:
            note = f"a covariate: {100 * c.fail_fraction:.1f}% of {m:,} sampled candidates fail it"
        print(f"  {c.label}  ({note})")
    covariate = [c for c in result.criteria if not c.on_output]
    if covariate:
        passing = round(result.covariate_pass_fraction * m)
        print(f"criteria on covariates: {passing:,} of the first {m:,} candidates "
              f"({100 * result.covariate_pass_fraction:.1f}%) meet them")
    if not result.enrolment_known:
        outputs = ", ".join(dict.fromkeys(c.name for c in result.criteria if c.on_output))
        print(f"criteria on outputs ({outputs}) are applied at each candidate's baseline steady "
              "state, which the run solves and check does not: the fraction enrolled is not "
              "known until the run")


def _screening_time(result) -> str:
    """The screening's share of the time estimate and what it assumes."""
    from popsim.api import STEADY_STATES_PER_SECOND

    n, budget = result.n_patients, result.max_candidates
    if not math.isfinite(result.candidates):
        return (f"screening: no sampled candidate meets the criteria on covariates; the run "
                f"would stop with an error after screening up to {budget:,} candidates "
                "(population.max_screened)")
    expected = math.ceil(result.candidates)
    over = (f"; more than the screening budget of {budget:,} candidates "
            "(population.max_screened): the run would stop with an error"
            if expected > budget else "")
    if result.enrolment_known:
        return (f"screening: about {expected:,} candidates for {n:,} patients "
                f"({n:,} / {100 * result.covariate_pass_fraction:.1f}% meeting the criteria on "
                f"covariates; sampling only, no steady states, not counted){over}")
    least = (f"{n:,} / {100 * result.covariate_pass_fraction:.1f}% meeting the criteria on "
             "covariates, as if all of them met the criteria on outputs"
             if any(not c.on_output for c in result.criteria)
             else "as if every candidate met the criteria")
    return (f"screening (included above): one baseline steady state per candidate, "
            f"{STEADY_STATES_PER_SECOND:,} per second per device; at least {expected:,} "
            f"candidates ({least}), at most the screening budget of {budget:,} "
            f"(population.max_screened){over}")


def _outputs():
    from popsim.outputs import OUTPUT_SPECS

    return ("outputs", ["name", "unit", "meaning"],
            [(name, unit, meaning) for name, (unit, meaning) in OUTPUT_SPECS.items()])


def _covariates():
    from popsim.covariates import COVARIATE_LIMITS, COVARIATES, _default_covariates
    from popsim.facts import title

    defaults = _default_covariates()
    rows = []
    for name, (unit, _, labels) in COVARIATES.items():
        lo, hi = COVARIATE_LIMITS.get(name, (math.nan, math.nan))
        allowed = ", ".join(labels) if labels else f"{lo:g} to {hi:g}"
        rows.append((name, unit, title(name), allowed, _default_text(defaults[name])))
    return ("covariates", ["name", "unit", "meaning", "allowed", "default (US adults)"], rows)


def _default_text(d) -> str:
    if hasattr(d, "female"):
        return f"female: {_default_text(d.female)}; male: {_default_text(d.male)}"
    fields = d.model_dump(exclude_none=True)
    kind = fields.pop("distribution")
    if kind == "categorical":
        return ", ".join(f"{v} {p:g}" for v, p in zip(d.values, d.probabilities, strict=True))
    bounds = ("min", "max", "age_slope")
    shown = {k: v for k, v in fields.items() if k not in bounds}
    shown.update({k: fields[k] for k in bounds if fields.get(k)})
    return f"{kind}(" + ", ".join(f"{k} {v:g}" for k, v in shown.items()) + ")"


def _parameters():
    from popsim.parameters import parameter_specs
    from popsim.parameters.io import default_parameters, provenance

    shipped = default_parameters()
    rows = []
    for s in parameter_specs():
        value = getattr(shipped.params, s.name)
        cv = shipped.cvs.get(s.name, s.iiv)
        prov, source = provenance(s.name, shipped)
        rows.append((s.name, s.unit, f"{value:.4g}", f"{cv:g}" if cv else "",
                     s.description, prov, source))
    return (f"parameters (values of {shipped.source})",
            ["name", "unit", "value", "CV", "meaning", "provenance", "source"], rows)


def _interventions():
    from popsim.interventions import REGISTRY, Intervention

    rows = []
    for kind, cls in REGISTRY.items():
        refused = cls.refused_keys()  # inherited keys the kind does not accept
        keys = [f"{k}: {f.description}" if f.description else k
                for k, f in cls.model_fields.items()
                if k != "kind" and k not in Intervention.model_fields and k not in refused]
        rows.append((kind, cls.summary, "; ".join(keys)))
    return ("intervention kinds (each also takes start_day and end_day, days)",
            ["name", "meaning", "keys"], rows)


INFO = {"outputs": _outputs, "covariates": _covariates, "parameters": _parameters,
        "interventions": _interventions}


def cmd_info(args) -> int:
    title, columns, rows = INFO[args.topic]()
    _table(title, columns, rows)
    return 0


def cmd_vpop(args) -> int:
    from popsim.config import ConfigError
    from popsim.vpop import VpopError, select

    try:
        sel = select(args.cohort, args.targets, out=args.out, seed=args.seed, force=args.force)
    except (ConfigError, VpopError) as e:
        return _fail(e)
    _table(f"fit at day {sel.day:g}, arm {sel.arm!r} (Kolmogorov-Smirnov)",
           ["output", "unit", "KS D before", "p before", "KS D after", "p after"],
           [(f.output, f.unit, f"{f.statistic_before:.3f}", f"{f.pvalue_before:.3g}",
             f"{f.statistic_after:.3f}", f"{f.pvalue_after:.3g}") for f in sel.fits])
    print(f"{sel.n_selected:,} of {sel.n_plausible:,} plausible patients selected (efficiency "
          f"{100 * sel.efficiency:.1f}%, seed {sel.seed}); wrote {args.out}")
    return 0
