"""``python -m daemonkit``: the same as the ``daemonkit`` console script."""

import os
import signal
import sys

from daemonkit.cli import INTERRUPTED, main

code = main()
# The command is over. A Ctrl-C from here on would land while the interpreter tears down and
# has put back SIGINT's default action: death by signal, no word. The result stands instead.
signal.signal(signal.SIGINT, signal.SIG_IGN)
if code == INTERRUPTED:
    # Cleanup has run: leave with the documented 130. At finalization CPython may otherwise
    # kill itself with SIGINT (status -2) when a KeyboardInterrupt crossed code it ran during
    # startup, even one that main() handled.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
