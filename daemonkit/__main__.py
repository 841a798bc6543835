"""``python -m daemonkit``: the same as the ``daemonkit`` console script."""

import os
import signal
import sys

from daemonkit.cli import INTERRUPTED_CODES, main
from daemonkit.interrupts import INTERRUPTS

code = main()
# The command is over. A Ctrl-C (or SIGTERM, SIGHUP) from here on would land while the
# interpreter tears down and has put back the default action: death by signal, no word. The
# result stands instead.
for sig in INTERRUPTS:
    signal.signal(sig, signal.SIG_IGN)
if code in INTERRUPTED_CODES:
    # Cleanup has run: leave with the documented 128 + signal. At finalization CPython may otherwise
    # kill itself with SIGINT (status -2) when a KeyboardInterrupt crossed code it ran during
    # startup, even one that main() handled.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
