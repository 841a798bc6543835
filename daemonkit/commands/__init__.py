"""The command layer: one module per command group, on top of every feature package.

Each module exposes ``register(subparsers)``, parses its arguments, calls the feature packages
(:mod:`daemonkit.daemon`, :mod:`daemonkit.service`, :mod:`daemonkit.bench`,
:mod:`daemonkit.remote`, :mod:`daemonkit.lessons`, :mod:`daemonkit.report`), prints, and
returns an exit code. Nothing below this package imports it: the features know nothing of
argparse or of the terminal's exit codes.
"""
