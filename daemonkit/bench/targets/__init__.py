"""Where the other end of a benchmarked channel lives: one module per target.

Each module holds one :class:`~daemonkit.bench.runner.Target`:

* :mod:`~daemonkit.bench.targets.local`: a peer this process forks or starts as a thread,
  over any channel of :mod:`daemonkit.channels` (``daemonkit bench``);
* :mod:`~daemonkit.bench.targets.daemon`: the running demo daemon's echo endpoints
  (``daemonkit bench --target daemon``);
* :mod:`~daemonkit.bench.targets.remote`: a ``daemonkit serve``, maybe on another host
  (``daemonkit bench --connect``).

Each plans its cases and makes one case's other end; :func:`daemonkit.bench.runner.run_case`
does the rest, the same for all three.
"""
