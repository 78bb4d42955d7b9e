# %% [markdown]
# # A virtual trial as an xarray Dataset
#
# `popsim.simulate` runs a config (a path, TOML text or a dict) and returns the cohort as an
# `xarray.Dataset`: outputs over `arm`, `patient` and `day`, covariates and the KDIGO
# `ckd_stage` as coordinates, units in every variable's attributes, failed patients NaN.
# Run it as a script or cell by cell (`# %%`); `POPSIM_EXAMPLE_SMALL=1` makes it tiny.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import popsim  # noqa: E402

SMALL = os.environ.get("POPSIM_EXAMPLE_SMALL") == "1"

config = {
    "population": {
        "size": 14 if SMALL else 400,
        "seed": 11,
        "covariates": {"egfr": {"distribution": "uniform", "low": 10, "high": 120}},
    },
    "simulation": {"days": 10 if SMALL else 60},
    "arm": [
        {"name": "control"},
        {"name": "magnesium",
         "intervention": [{"kind": "oral_magnesium", "dose": 400, "start_day": 2,
                           "end_day": 8 if SMALL else 40}]},
    ],
}
ds = popsim.simulate(config, chunk_size=7 if SMALL else 400, progress=not SMALL)
print(ds)

# %% [markdown]
# Serum Mg on the last day by CKD stage and arm (medians of the patients solved).

# %%
last = ds.serum_mg.isel(day=-1)
by_stage = last.groupby("ckd_stage").median(dim="patient")
print(by_stage.to_pandas().round(3))

# %% [markdown]
# Median time course per arm with the 10-90% band, and the last day by CKD stage.

# %%
unit = ds.serum_mg.attrs["units"]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for arm in ds.arm.values:
    x = ds.serum_mg.sel(arm=arm)
    q = x.quantile([0.1, 0.5, 0.9], dim="patient")
    (line,) = left.plot(ds.day, q.sel(quantile=0.5), label=str(arm))
    left.fill_between(ds.day, q.sel(quantile=0.1), q.sel(quantile=0.9), alpha=0.2,
                      color=line.get_color())
left.set(xlabel=f"time ({ds.day.attrs['units']})", ylabel=f"serum Mg ({unit})",
         title="median and 10-90% of patients")
left.legend()
stages = list(by_stage.ckd_stage.values)
width = 0.4
for i, arm in enumerate(ds.arm.values):
    positions = [k + (i - 0.5) * width for k in range(len(stages))]
    right.bar(positions, by_stage.sel(arm=arm).values, width=width, label=str(arm))
right.set_xticks(range(len(stages)), stages)
right.set(xlabel="KDIGO GFR category", ylabel=f"serum Mg, day {float(ds.day[-1]):g} ({unit})",
          title="median by CKD stage")
right.legend()
fig.tight_layout()
fig.savefig("xarray_analysis.png", dpi=120)
print("wrote xarray_analysis.png")
