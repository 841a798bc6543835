"""The daemon's IPC echo endpoints: what ``daemonkit bench --target daemon`` measures.

Each endpoint is one mechanism, in its own module, behind :class:`Endpoint`: ``start()`` makes
the shared kernel objects and threads (after daemonization: no thread may exist before the
forks), ``open_for_client()`` answers a control ``open`` request (per-client objects, such as a
FIFO pair or a shared memory segment, are created then and tied to that control connection),
``counters()`` feeds ``status``, and ``stop()`` removes every kernel object the endpoint made.
The client side of each is in :mod:`daemonkit.service.client`.
"""

from __future__ import annotations

from pathlib import Path

from daemonkit.service.endpoints.base import Endpoint

__all__ = ["Endpoint", "make_endpoints"]


def make_endpoints(names: tuple[str, ...], runtime_dir: Path) -> dict[str, Endpoint]:
    """The endpoints named in the configuration, constructed but not started."""
    registry: dict[str, type[Endpoint]] = {}
    return {name: registry[name](runtime_dir) for name in names if name in registry}
