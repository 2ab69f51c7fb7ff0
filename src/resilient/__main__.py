"""``python -m resilient``: the same as the ``resilient`` command."""

import sys

from .cli import main

sys.exit(main())
