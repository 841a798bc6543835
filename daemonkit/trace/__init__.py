"""``daemonkit trace``: the scheduler's own events around a ping-pong, beside its measurements.

The bench infers what a context switch costs from round-trip times and getrusage(2) counts;
this package records the switches themselves, with the bench's channels, peers and timed loop:

* :mod:`~daemonkit.trace.perf`: ``perf record`` of the scheduler's tracepoints, switched on
  only around the timed loop, and what is missing where it cannot record;
* :mod:`~daemonkit.trace.events`: ``perf script`` lines as switches, wake-ups, futex waits;
* :mod:`~daemonkit.trace.capture`: one traced case, set up and torn down on every path;
* :mod:`~daemonkit.trace.analysis`: per-round-trip figures and a few round trips' timeline;
* :mod:`~daemonkit.trace.reading`: sentences chosen by computed conditions;
* :mod:`~daemonkit.trace.run`: every case into one ``daemonkit.trace/1`` document;
* :mod:`~daemonkit.trace.views`: the terminal timeline and table.

*Kernel path*: perf_event_open(2) (through perf), plus the bench's calls.
*Lifetime*: everything a case creates lives as long as the case.
*See also*: perf-record(1), sched(7), getrusage(2), ``docs/trace.md``.
"""
