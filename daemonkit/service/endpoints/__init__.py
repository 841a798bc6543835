"""The daemon's IPC echo endpoints: what ``daemonkit bench --target daemon`` measures.

Each endpoint is one mechanism, in its own module, behind :class:`Endpoint`: ``start()`` makes
the shared kernel objects and threads (after daemonization: no thread may exist before the
forks), ``open_for_client()`` answers a control ``open`` request (per-client objects, such as a
FIFO pair or a shared memory segment, are created then and tied to that control connection),
``counters()`` feeds ``status``, ``stop()`` removes every kernel object the endpoint made, and
the static ``client_end()`` builds the client's end from the ``open`` reply (used by
:func:`daemonkit.service.client.open_endpoint`).

:data:`REGISTRY` below is the one list of them: the configuration's names and defaults
(:mod:`daemonkit.service.config`), the server, the client and ``bench --target daemon`` all
derive theirs from it, and the tests are parametrized over it. Adding an endpoint is one module
and one line here.
"""

from __future__ import annotations

from pathlib import Path

from daemonkit.service.endpoints.base import Endpoint

# Imported here, not lazily: the daemon drops privileges before it makes its endpoints, and the
# user it becomes may not be able to read the Python installation (e.g. one under /root).
from daemonkit.service.endpoints.shm import ShmEndpoint
from daemonkit.service.endpoints.signal_ep import SignalEndpoint
from daemonkit.service.endpoints.stream import FifoEndpoint, UnixStreamEndpoint
from daemonkit.service.endpoints.zmq_ipc import ZmqIpcEndpoint

__all__ = ["ENDPOINT_NAMES", "REGISTRY", "Endpoint", "make_endpoints"]

REGISTRY: dict[str, type[Endpoint]] = {
    "unix-stream": UnixStreamEndpoint,
    "fifo": FifoEndpoint,
    "zmq-ipc": ZmqIpcEndpoint,
    "signal": SignalEndpoint,
    "posix-shm": ShmEndpoint,
}

ENDPOINT_NAMES = tuple(REGISTRY)  # in the registry's order: the config's default, bench's order


def make_endpoints(
    names: tuple[str, ...], runtime_dir: Path, held_dir: Path | None = None
) -> dict[str, Endpoint]:
    """The endpoints named in the configuration, constructed but not started."""
    return {name: REGISTRY[name](runtime_dir, held_dir) for name in names}
