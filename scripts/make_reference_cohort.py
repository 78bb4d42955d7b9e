"""Write tests/data/reference_cohort.h5: a small cohort whose numbers tests/test_reference_file.py
requires bit for bit, so a refactoring cannot change results unnoticed.

Run it again (and commit the file) only when the model or the solver changes results on
purpose, and say so in the commit message:

    python scripts/make_reference_cohort.py
"""

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's popsim, whatever is installed
CONFIG = ROOT / "tests" / "data" / "reference_cohort.toml"
OUT = ROOT / "tests" / "data" / "reference_cohort.h5"


def main() -> int:
    from popsim.config import load_config
    from popsim.run import run_cohort

    config, text = load_config(CONFIG)
    run_cohort(config, text, OUT, chunk_size=4, force=True, progress=False)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
