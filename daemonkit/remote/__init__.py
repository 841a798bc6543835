"""Beyond one machine: an echo peer other hosts reach, its wire format, and its client.

``daemonkit serve`` (:mod:`~daemonkit.remote.serve`) echoes over ZeroMQ and plain TCP, as
:mod:`~daemonkit.remote.wire` says; :mod:`~daemonkit.remote.client` gives the client ends
that ``daemonkit bench --connect`` measures (:mod:`daemonkit.bench.targets.remote`), and
``daemonkit throughput`` (:mod:`~daemonkit.remote.throughput`) streams pipelined messages
to it.
"""
