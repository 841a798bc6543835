"""Beyond one machine: an echo peer other hosts reach, and the bench's client ends for it.

``daemonkit serve`` (:mod:`~daemonkit.remote.serve`) echoes over ZeroMQ and plain TCP;
``daemonkit bench --connect`` (:mod:`~daemonkit.remote.measure`, :mod:`~daemonkit.remote.client`)
measures round trips to it with the local runner; ``daemonkit throughput``
(:mod:`~daemonkit.remote.throughput`) streams pipelined messages to it.
"""
