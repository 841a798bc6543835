"""The daemonizer: daemon(7)'s SysV steps, the pidfile, sd_notify and the python-daemon backend.

* :mod:`~daemonkit.daemon.steps`: one function per daemon(7) step, each with its *why*;
* :mod:`~daemonkit.daemon.native`: the steps in order (read it top to bottom);
* :mod:`~daemonkit.daemon.pydaemon`: the same daemon through python-daemon's ``DaemonContext``;
* :mod:`~daemonkit.daemon.pidfile`: the kernel-locked pidfile;
* :mod:`~daemonkit.daemon.readiness`: the pipe that carries "ready" or the reason it is not;
* :mod:`~daemonkit.daemon.notify`: sd_notify(3), written out.
"""
