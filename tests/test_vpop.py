"""Virtual-population selection (popsim vpop select): targets that differ clearly from the
plausible cohort are matched (Kolmogorov-Smirnov p > 0.05 after, tiny before), the selection is
seeded, the source is untouched, the selected cohort is an ordinary cohort file with the
selection recorded, and bad targets give one-line errors."""

import hashlib
import json
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats
from test_reliability import assert_one_line_error, run_main

from popsim import store, vpop
from popsim.config import ConfigError
from popsim.facts import STATUS_MEANINGS
from popsim.outputs import OUTPUT_SPECS

N = 4000


def _cohort(path: Path, n: int = N, chunk: int = 1000, seed: int = 0) -> dict:
    """A plausible cohort written through popsim.store without the model: serum Mg normal
    (0.85, 0.08) mmol/L at day 0 and 0.05 lower at day 10, serum K correlated with it, one
    patient in 50 failed in the second arm."""
    rng = np.random.default_rng(seed)
    layout = store.CohortLayout(
        arms=("control", "treated"), n_patients=n, times=np.array([0.0, 10.0]),
        outputs={"serum_mg": "mmol/L", "serum_k": "mmol/L"},
        covariates={"egfr": ("float", "mL/min/1.73 m2"), "sex": ("category", "1")},
        categories={"sex": ("female", "male")}, parameters={"mg_gut_absorbed_ref": "1"},
        chunk_size=chunk)
    store.create(path, layout, {"config": "[population]\nsize = 1\n", "seed": 7},
                 status_meanings=STATUS_MEANINGS)
    mg = rng.normal(0.85, 0.08, n)
    k = rng.normal(4.2, 0.3, n) + 2.0 * (mg - 0.85)
    days = lambda x, shift: np.stack([x, x + shift], axis=-1)  # noqa: E731
    data = {"serum_mg": np.stack([days(mg, -0.05), days(mg, -0.02)]).astype(np.float32),
            "serum_k": np.stack([days(k, 0.0), days(k, 0.1)]).astype(np.float32),
            "egfr": rng.uniform(10, 120, n), "sex": rng.integers(0, 2, n),
            "mg_gut_absorbed_ref": rng.lognormal(-1.05, 0.15, n),
            "status": np.zeros((2, n), np.int8)}
    data["status"][1, ::50] = 2
    for c in range(n // chunk):
        s = slice(c * chunk, (c + 1) * chunk)
        store.write_chunk(path, c, c * chunk, {"egfr": data["egfr"][s], "sex": data["sex"][s]},
                          {"mg_gut_absorbed_ref": data["mg_gut_absorbed_ref"][s]},
                          {k: data[k][:, s] for k in ("serum_mg", "serum_k")},
                          data["status"][:, s])
    store.finalize(path)
    return data


@pytest.fixture(scope="module")
def plausible(tmp_path_factory):
    path = tmp_path_factory.mktemp("vpop") / "plausible.h5"
    return path, _cohort(path)


LOW_MG = """seed = 4
[target.serum_mg]
distribution = "normal"
mean = 0.78
sd = 0.05
unit = "mmol/L"
"""


def _targets(tmp_path, text, name="targets.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_shifted_serum_mg_target_is_matched(plausible, tmp_path):
    path, data = plausible
    before = path.read_bytes()
    sel = vpop.select(path, _targets(tmp_path, LOW_MG), out=tmp_path / "v.h5")
    assert path.read_bytes() == before  # the source is never modified
    plausible_rows = np.flatnonzero((data["status"] == 0).all(axis=0))
    assert sel.n_cohort == N and sel.n_plausible == plausible_rows.size == N - N // 50
    assert 0 < sel.n_selected < sel.n_plausible
    assert sel.efficiency == sel.n_selected / sel.n_plausible
    (fit,) = sel.fits
    # the fit, recomputed from the raw values of the patients selected
    x = data["serum_mg"][0, sel.patients, 0].astype(float)
    assert np.isin(sel.patients, plausible_rows).all()
    target = stats.norm(0.78, 0.05)
    assert fit.pvalue_after == pytest.approx(stats.kstest(x, target.cdf).pvalue)
    assert fit.pvalue_before < 1e-6 < 0.05 < fit.pvalue_after
    assert fit.statistic_after < fit.statistic_before / 5
    assert abs(np.mean(x) - 0.78) < 0.01 and abs(np.std(x) - 0.05) < 0.01


def test_the_selected_cohort_is_an_ordinary_cohort_file(plausible, tmp_path):
    path, data = plausible
    targets = _targets(tmp_path, LOW_MG)
    sel = vpop.select(path, targets, out=tmp_path / "v.h5")
    coh = store.open_cohort(tmp_path / "v.h5")
    rows = sel.patients
    assert coh.complete and coh.n_patients == sel.n_selected
    np.testing.assert_array_equal(coh.patient_ids, rows)  # source indices kept
    assert coh.arms == ("control", "treated") and coh.times.tolist() == [0.0, 10.0]
    np.testing.assert_array_equal(coh.output("serum_k"), data["serum_k"][:, rows])
    np.testing.assert_array_equal(coh.output("serum_mg", day=10), data["serum_mg"][:, rows, 1])
    np.testing.assert_array_equal(coh.covariate("sex"),
                                  np.array(["female", "male"])[data["sex"][rows]])
    np.testing.assert_array_equal(coh.parameter("mg_gut_absorbed_ref"),
                                  data["mg_gut_absorbed_ref"][rows])
    assert coh.units("serum_mg") == "mmol/L" and coh.units("egfr") == "mL/min/1.73 m2"
    a = coh.attrs
    assert a["vpop_source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert a["vpop_targets"] == LOW_MG and a["vpop_seed"] == 4 and a["vpop_day"] == 0.0
    assert a["n_patients"] == sel.n_selected and a["seed"] == 7
    fit = json.loads(a["vpop_fit"])["serum_mg"]
    assert fit["ks_after"][1] == pytest.approx(sel.fits[0].pvalue_after)


def test_several_outputs_by_probability_of_inclusion(plausible, tmp_path):
    """A log-normal serum Mg target and a quantile serum K target at once (the outputs are
    correlated in the cohort): both are matched."""
    path, data = plausible
    text = """seed = 2
[target.serum_mg]
distribution = "lognormal"
mean = 0.80
sd = 0.06
[target.serum_k]
distribution = "quantiles"
probabilities = [0.1, 0.5, 0.9]
values = [3.9, 4.2, 4.5]
"""
    sel = vpop.select(path, _targets(tmp_path, text))
    assert sel.path is None and not (tmp_path / "v.h5").exists()
    for f in sel.fits:
        assert f.pvalue_before < 1e-6 < 0.05 < f.pvalue_after, f
    k = data["serum_k"][0, sel.patients, 0]
    assert np.quantile(k, [0.1, 0.5, 0.9]) == pytest.approx([3.9, 4.2, 4.5], abs=0.06)


def test_seeded_and_by_day_and_arm(plausible, tmp_path):
    path, data = plausible
    targets = vpop.parse_targets(tomllib.loads(LOW_MG))
    a = vpop.select(path, targets)
    assert np.array_equal(a.patients, vpop.select(path, targets).patients)
    assert not np.array_equal(a.patients, vpop.select(path, targets, seed=5).patients)
    later = vpop.parse_targets({**tomllib.loads(LOW_MG), "day": 10, "arm": "treated"})
    sel = vpop.select(path, later)
    x = data["serum_mg"][1, sel.patients, 1].astype(float)
    assert sel.fits[0].pvalue_after == pytest.approx(stats.kstest(x, "norm", (0.78, 0.05)).pvalue)
    assert sel.day == 10.0 and sel.arm == "treated"


@pytest.mark.parametrize(("text", "message"), [
    (LOW_MG.replace("serum_mg", "serum_mgg"),
     "target.serum_mgg: the cohort .* has no output 'serum_mgg' \\(did you mean 'serum_mg'\\?\\)"),
    (LOW_MG.replace('unit = "mmol/L"', 'unit = "mg/dL"'),
     "target.serum_mg.unit: 'mg/dL', but the cohort stores serum_mg in 'mmol/L'"),
    ("day = 3\n" + LOW_MG, "day: .* day 3 is not a saved day"),
    ('arm = "placebo"\n' + LOW_MG, "arm: 'placebo' is not an arm of .* \\(arms: control, "
                                   "treated\\)"),
])
def test_targets_that_do_not_fit_the_cohort(plausible, tmp_path, text, message):
    path, _ = plausible
    with pytest.raises(vpop.VpopError, match=message):
        vpop.select(path, _targets(tmp_path, text), out=tmp_path / "v.h5")
    assert not (tmp_path / "v.h5").exists()


@pytest.mark.parametrize(("text", "message"), [
    (LOW_MG.replace("sd = 0.05", "sdd = 0.05"),
     "target.serum_mg: unknown key 'sdd' \\(did you mean 'sd'\\?\\); allowed: distribution, "
     "mean, sd, unit"),
    (LOW_MG.replace("seed", "sed"), "unknown key 'sed' \\(did you mean 'seed'\\?\\)"),
    (LOW_MG.replace('"normal"', '"gamma"'),
     "target.serum_mg.distribution: 'gamma'; allowed: normal, lognormal, quantiles"),
    (LOW_MG.replace("sd = 0.05", "sd = -0.05"), "target.serum_mg.sd: Input should be greater"),
    ('[target.serum_k]\ndistribution = "quantiles"\nprobabilities = [0.5, 0.1]\n'
     'values = [4, 5]\n', "target.serum_k: probabilities and values must both increase"),
    ("seed = 1\n", "target: name at least one output"),
])
def test_bad_targets_files(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as e:
        vpop.load_targets(_targets(tmp_path, text))
    assert "\n" not in str(e.value) and str(e.value).startswith(str(tmp_path))


def test_the_example_targets_file_names_outputs_in_their_units():
    targets, _ = vpop.load_targets("configs/vpop_targets_low_mg.toml")
    for name, t in targets.target.items():
        assert t.unit == OUTPUT_SPECS[name][0]


def test_cli_selects_from_a_simulated_cohort_and_report_reads_the_result(api_cohort, tmp_path,
                                                                          capsys):
    """`popsim vpop select` on a run's file (14 patients, two arms) with a target centred
    below the cohort's median serum Mg; `popsim report` works on the selected file."""
    path, ds = api_cohort
    before = path.read_bytes()
    mg = ds.serum_mg.sel(arm="control", day=0).values
    text = (f'[target.serum_mg]\ndistribution = "normal"\nmean = {np.quantile(mg, 0.4):.4f}\n'
            f"sd = {np.std(mg):.4f}\n")
    targets = _targets(tmp_path, text)
    out = tmp_path / "vpop.h5"
    code, stdout, _ = run_main(capsys, "vpop", "select", path, "--targets", targets, "--out",
                               out, "--seed", "3")
    assert code == 0 and path.read_bytes() == before
    coh = store.open_cohort(out)
    assert f"{coh.n_patients} of 14 plausible patients selected" in stdout
    assert "serum_mg" in stdout and "mmol/L" in stdout and "efficiency" in stdout
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(coh.output("urine_mg"),
                                      f["urine_mg"][:, coh.patient_ids, :])
    code, stdout, _ = run_main(capsys, "report", out, "--out", tmp_path / "report")
    assert code == 0 and (tmp_path / "report" / "summary.json").exists()
    code, _, err = run_main(capsys, "vpop", "select", path, "--targets", targets, "--out", out)
    assert_one_line_error(code, err, f"--out {out}: file exists; pass --force")
    code, _, err = run_main(capsys, "vpop", "select", path, "--targets", targets, "--out", path,
                            "--force")
    assert_one_line_error(code, err, "is an input of this command")
    assert path.read_bytes() == before
