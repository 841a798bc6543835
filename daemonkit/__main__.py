"""``python -m daemonkit``: the same as the ``daemonkit`` console script."""

import sys

from daemonkit.cli import main

sys.exit(main())
