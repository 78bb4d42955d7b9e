"""``python -m popsim.cli``: the same as the ``popsim`` command."""

import sys

from popsim.cli import main

sys.exit(main())
