"""``python -m daemonkit``: the same as the ``daemonkit`` console script."""

import os
import sys

from daemonkit.cli import INTERRUPTED, main

code = main()
if code == INTERRUPTED:
    # Interrupted: cleanup has run. Leave now with the documented 130: at finalization
    # CPython may otherwise kill itself with SIGINT (status -2 instead of 130) when a
    # KeyboardInterrupt crossed code it ran during startup, even one main() handled.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
