"""One module per IPC mechanism, all behind :class:`daemonkit.channels.base.Channel`.

The registry below maps each canonical name (the one the CLI takes) to its class. Modules are
imported only when a channel is used, so that listing channels does not load pyzmq or the
System V and POSIX IPC extensions.
"""

from __future__ import annotations

import importlib

from daemonkit.channels.base import Channel
from daemonkit.errors import UsageError

__all__ = ["REGISTRY", "channel_class", "channel_names"]

REGISTRY: dict[str, str] = {
    # payload channels between processes (and between threads)
    "pipe": "daemonkit.channels.pipe:PipeChannel",
    "fifo": "daemonkit.channels.fifo:FifoChannel",
    "unix-stream": "daemonkit.channels.unix:UnixStreamChannel",
    "unix-dgram": "daemonkit.channels.unix:UnixDgramChannel",
    "tcp": "daemonkit.channels.tcp:TcpChannel",
    "sysv-shm": "daemonkit.channels.sysv_shm:SysvShmChannel",
    "posix-shm": "daemonkit.channels.posix_shm:PosixShmChannel",
    "sysv-mq": "daemonkit.channels.sysv_mq:SysvMqChannel",
    "posix-mq": "daemonkit.channels.posix_mq:PosixMqChannel",
    "zmq-ipc": "daemonkit.channels.zmq:ZmqIpcChannel",
    "zmq-tcp": "daemonkit.channels.zmq:ZmqTcpChannel",
    "zmq-inproc": "daemonkit.channels.zmq:ZmqInprocChannel",
    # what Python programmers reach for: multiprocessing's pipes, queue and shared memory
    "mp-pipe": "daemonkit.channels.mp_pipe:MpPipeChannel",
    "mp-pipe-simplex": "daemonkit.channels.mp_pipe:MpPipeSimplexChannel",
    "mp-queue": "daemonkit.channels.mp_queue:MpQueueChannel",
    "mp-shm": "daemonkit.channels.mp_shm:MpShmChannel",
    # busy-polling shared memory: no system call per message
    "shm-spin": "daemonkit.channels.shm_spin:ShmSpinChannel",
    # notification channels: no payload
    "signal": "daemonkit.channels.signals:SignalChannel",
    "rt-signal": "daemonkit.channels.signals:RtSignalChannel",
    "eventfd": "daemonkit.channels.eventfd:EventfdChannel",
    "sysv-sem": "daemonkit.channels.sysv_sem:SysvSemChannel",
    "posix-sem": "daemonkit.channels.posix_sem:PosixSemChannel",
    # thread primitives (one process, two threads)
    "th-condition": "daemonkit.channels.threads:ConditionChannel",
    "th-event": "daemonkit.channels.threads:EventChannel",
    "th-semaphore": "daemonkit.channels.threads:SemaphoreChannel",
    "th-queue": "daemonkit.channels.threads:QueueChannel",
    "th-simplequeue": "daemonkit.channels.threads:SimpleQueueChannel",
}


def channel_names() -> list[str]:
    """Every canonical channel name, in the registry's order."""
    return list(REGISTRY)


def channel_class(name: str) -> type[Channel]:
    """The class behind *name*; :class:`UsageError` for a name that is not a channel."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown channel {name!r} (known: {', '.join(REGISTRY)})") from None
    module, _, cls = target.partition(":")
    found: type[Channel] = getattr(importlib.import_module(module), cls)
    return found
