"""``python -m client ...``: the ``maze-inference`` command without the console script; see client/cli.py."""

import sys

from .cli import main

sys.exit(main())
