"""The built-in physiology scenarios of `popsim validate` (the behaviours of docs/MODEL.md): every
observation with a value or window is a test. CI runs them at 16 patients per scenario (the
reference-range scenario asks for 200). The published studies run at the same sizes, and every
observation they matched when `tests/data/evidence_matches.txt` was written must still match."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import counted_popsim, readme_command, run_readme_command

from popsim import compile_cache as cc
from popsim import evidence, validation

CHECKS = [(s.study.id, o.label) for s in evidence.scenarios() for o in s.observation
          if o.value is not None or o.expected is not None]

KNOWN_MISSES = {
    # each listed, with the model's value and the mechanism missing, in docs/MODEL.md
    ("depletion", "urine_mg_day7"),
    ("diuretics", "loop_day1_urine_na"),
    ("mg_specific_potassium", "k_alone_fails_in_mg_deficiency"),
    ("mg_specific_potassium", "cell_k_repletion_fails"),
    ("mg_specific_potassium", "mg_restores_response"),
    ("refractory_hypokalemia", "ratio"),
}


@pytest.fixture(scope="session")
def validation_report(tmp_path_factory):
    """`popsim validate --size 16` as the README writes it (quietly), in a fresh folder: the
    report behind what it printed and the folder it wrote (``validation/``). Its exit status
    says whether every check passed."""
    cwd = tmp_path_factory.mktemp("validation")
    argv = readme_command("validate")
    assert argv == ["validate", "--size", "16"]  # the scenarios' size: programs shared below
    status, got = run_readme_command([*argv, "--quiet"], cwd, [(validation, "validate")])
    report = got["validate"]
    assert status == (0 if report.passed else 1)
    return report, cwd / "validation"


MATCHING = [c for c in CHECKS if c not in KNOWN_MISSES]


@pytest.mark.parametrize("study, label", MATCHING, ids=[f"{s}.{o}" for s, o in MATCHING])
def test_scenario_observation_matches(validation_report, study, label):
    report, _ = validation_report
    [r] = [r for r in report.results if r.study == study and r.observation.label == label]
    o = r.observation
    assert r.match, (f"{study}.{label}: model {r.model:.4g} {o.unit}, expected "
                     f"{r.interval} ({o.source})")


def test_known_misses_are_still_misses_and_documented(validation_report):
    """The documented misses are exactly the checks that miss: a fixed one must leave the list
    (and docs/MODEL.md), a new one must be explained there."""
    from pathlib import Path

    report, _ = validation_report
    missing = {(r.study, r.observation.label) for r in report.misses()}
    assert missing == KNOWN_MISSES
    doc = (Path(__file__).parents[1] / "docs" / "MODEL.md").read_text()
    for study, label in KNOWN_MISSES:
        assert f"{study}.{label}" in doc, f"{study}.{label} is not explained in docs/MODEL.md"


def test_decomposition_reports_each_mechanism(validation_report):
    """The Mg-K scenario is re-simulated without the pump's, ROMK's and NCC's Mg dependence;
    switching ROMK's or NCC's off, or all three, raises the Mg-deficient serum K towards the
    replete value."""
    report, out = validation_report
    rows = {d.observation: d.values for d in report.decompositions
            if d.study == "mg_specific_potassium"}
    k = rows["k_deficient"]
    assert set(k) == {"full model", "without pump Mg dependence", "without ROMK Mg block",
                      "without NCC Mg dependence", "without all three"}
    assert k["without all three"] > k["full model"]
    assert k["without NCC Mg dependence"] > k["full model"]
    assert k["without ROMK Mg block"] > k["full model"]
    assert (out / "decomposition.json").exists()


def test_a_second_identical_validate_compiles_nothing(validation_report, tmp_path):
    """In the suite's shared cache (``POPSIM_CACHE_DIR``, set by conftest, unless off): whatever
    the first validate compiles, or finds there from other tests, the second compiles nothing.
    (Here, after the validation fixture, the first finds the reference scenario's programs: it
    runs at the population study's 200 patients whatever ``--size``.)"""
    shared = os.environ.get(cc.ENV_DIR, "").strip()
    cache = tmp_path / "cache" if shared.lower() in ("", "off") else Path(shared)
    args = ["validate", "--size", "2", "--scenario", "reference", "--quiet", "--force"]
    counted_popsim([*args, "--out", str(tmp_path / "v1")], cache)
    second = counted_popsim([*args, "--out", str(tmp_path / "v2")], cache)
    assert second["compilations"] == 0 and second["cache_hits"] > 0


def test_every_scenario_with_a_time_course_checks_mass_balance():
    for s in evidence.scenarios():
        if len(s.design.arms) > 1:
            assert any(o.statistic == "mass_balance" for o in s.observation), s.study.id


def test_validation_writes_figures_and_json(validation_report):
    import matplotlib.image

    report, out = validation_report
    data = json.loads((out / "validation.json").read_text())
    assert len(data) == len(report.results)
    assert sum(d["interval"] is not None for d in data) == len(CHECKS)
    assert all({"study", "observation", "model", "interval", "match", "unit", "source"}
               <= set(d) for d in data)
    for s in evidence.scenarios():
        img = matplotlib.image.imread(out / f"{s.study.id}.png")
        ink = np.mean(np.any(img[..., :3] < 0.5, axis=-1))  # dark pixels: lines and text
        colour = np.mean(np.ptp(img[..., :3], axis=-1) > 0.2)  # coloured: the arms' courses
        assert ink > 0.01 and colour > 0.005, (s.study.id, ink, colour)


def test_reference_scenario_is_the_shipped_reference_config():
    """configs/reference_healthy.toml is the user-facing copy of the reference scenario's
    population."""
    from popsim.config import load_config

    shipped, _ = load_config("configs/reference_healthy.toml")
    scenario = evidence.catalogue()["reference"].design
    for name in ("age", "egfr", "mg_intake", "k_intake", "na_intake", "diuretic"):
        assert shipped.population.covariate(name) == scenario.population.covariate(name), name


def test_documented_study_table_covers_every_study_and_no_reserved_one():
    """docs/MODEL.md's model-against-study table (scripts/evidence_misses.py) has one row per
    non-reserved study file, and none for a study reserved for validation."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "MODEL.md").read_text()
    section = doc.split("<!-- evidence-table: begin -->")[1].split("<!-- evidence-table: end")[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (\d+)/(\d+) \|", section, flags=re.M)
    assert sorted(r[0] for r in rows) == sorted(s.study.id for s in evidence.studies())
    assert all(int(m) <= int(n) for _, m, n in rows)
    total = re.search(r"(\d+) of (\d+) observations in (\d+) studies match", section)
    assert total and int(total[1]) == sum(int(m) for _, m, _ in rows)
    assert int(total[2]) == sum(int(n) for _, _, n in rows) and int(total[3]) == len(rows)


PIN = Path(__file__).parent / "data" / "evidence_matches.txt"
"""The published-study observations the model matches at the sizes the file names
(scripts/pin_evidence_matches.py writes it from an `evidence run --all --table`)."""


def _pin() -> tuple[dict[str, int], list[str]]:
    sizes, keys = {}, []
    for line in PIN.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if "=" in line:
            name, value = (x.strip() for x in line.split("="))
            sizes[name] = int(value)
        else:
            keys.append(line.strip())
    return sizes, keys


PINNED = _pin()[1]


@pytest.fixture(scope="module")
def evidence_report(tmp_path_factory):
    """Every non-reserved study at the pin's sizes (the scenarios' sizes: their compiled
    programs are reused), run as the README's `popsim evidence run --all --size 16
    --population-size 200` (quietly): the report behind the table it printed."""
    sizes, _ = _pin()
    argv = readme_command("evidence", "run", "--all")
    assert argv[3:] == ["--size", str(sizes["size"]),
                        "--population-size", str(sizes["population_size"])]
    status, got = run_readme_command([*argv, "--quiet"], tmp_path_factory.mktemp("evidence"),
                                     [(validation, "run_studies")])
    report = got["run_studies"]
    assert {s.study.id for s in evidence.studies()} == set(report.trials)
    assert status == 0  # misses are results, not errors
    return report


def test_pin_names_observations_of_non_reserved_studies():
    sizes, keys = _pin()
    known = {f"{s.study.id}.{o.label}" for s in evidence.studies() for o in s.observation
             if o.value is not None or o.expected is not None}
    assert keys and set(keys) <= known, sorted(set(keys) - known)[:3]
    assert len(set(keys)) == len(keys)
    assert sizes == {"size": 16, "population_size": 200}  # the scenarios' sizes (shared programs)


@pytest.mark.parametrize("key", PINNED)
def test_pinned_study_observation_still_matches(evidence_report, key):
    """A published-study observation the model matched when the pin was written still matches
    (a model change that loses a match fails here; a new match is added by re-pinning)."""
    study, label = key.split(".", 1)
    [r] = [r for r in evidence_report.results
           if r.study == study and r.observation.label == label]
    o = r.observation
    assert r.match, (f"{key}: model {r.model:.4g} {o.unit}, data's interval {r.interval} "
                     f"({o.source or o.quote})")


def test_population_size_sets_population_studies_only():
    """``population_size`` replaces a population study's own size (its ``min_size``), never a
    trial's; without it a population study keeps at least its ``min_size``."""
    cat = evidence.catalogue()
    population, trial = cat["iom_2005"], cat["krishna_1991"]
    assert population.study.min_size > 200 and not trial.study.min_size
    assert evidence.design_config(population, 16, 200).population.size == 200
    assert evidence.design_config(population, 16).population.size == population.study.min_size
    assert evidence.design_config(trial, 16, 200).population.size == 16
    assert evidence.design_config(trial, None, 200).population.size == \
        trial.design.population.size


def test_the_readme_study_command_prints_what_the_all_study_run_found(evidence_report,
                                                                     tmp_path):
    """The README's `popsim evidence run fatemi_1991 morgan_1980 --out evidence_out`, at the
    pin's 16 patients per trial: the same patients as in the all-study run, so the same numbers,
    written to `evidence_out/evidence.json` with a figure per study."""
    argv = readme_command("evidence", "run", "fatemi_1991")
    status, _ = run_readme_command([*argv, "--size", "16", "--quiet"], tmp_path)
    assert status == 0
    out = tmp_path / argv[argv.index("--out") + 1]
    rows = json.loads((out / "evidence.json").read_text())
    chosen = set(argv[2:argv.index("--out")])
    assert {r["study"] for r in rows} == chosen == {"fatemi_1991", "morgan_1980"}
    assert {f.name for f in out.glob("*.png")} == {f"{s}.png" for s in chosen}
    before = {(r.study, r.observation.label): r.model for r in evidence_report.results
              if r.study in chosen}
    assert len(before) == len(rows)
    for row in rows:
        model = before[row["study"], row["observation"]]
        assert row["model"] == (model if np.isfinite(model) else None), row["observation"]
