"""A private socket file: an ``AF_UNIX`` listening socket whose file is 0600 from birth.

Facts about the mode of a socket file:

* ``bind(2)`` creates the file with the mode of the socket's inode, less the umask. A fresh
  socket's inode is 0777, so under a umask of 000 the file would be connectable by anyone
  (``connect(2)`` needs write permission on the file).
* ``fchmod(2)`` on the socket *before* ``bind`` sets the inode's mode, so the file comes into
  existence 0600: there is no moment at which it is more open than that (Linux). The umask can
  only take bits away from 0600.
* The other ways are worse. ``chmod`` after ``bind`` leaves a window in which the file is
  open wider. Setting a 0177 umask around ``bind`` is right only in a single-threaded process:
  the umask is per process, so while it is changed any other thread's ``open``, ``mkfifo`` or
  ``mkdir`` gets the wrong mode, and the daemon has threads (its endpoints', libzmq's).
* ZeroMQ's ``ipc://`` transport, left to itself, unlinks whatever file is at the path and
  binds a socket of its own with a plain ``bind(2)``, so the file's mode is whatever the
  umask leaves (libzmq has no mode option). So libzmq is not asked to bind: the socket is
  made here, 0600 and listening, and handed over with ``ZMQ_USE_FD`` (the option made for
  systemd's socket activation); ``zmq_bind`` on the same address then adopts the descriptor
  and neither binds, listens nor unlinks (libzmq's ``ipc_listener.cpp``). libzmq closes the
  descriptor with its socket; the file, which it did not create, is the creator's to unlink.
  See :func:`adopt_listener`.

Kernel path: socket(2), fchmod(2), bind(2), listen(2); for ZeroMQ, the descriptor passes to
libzmq's I/O thread, which accept(2)s on it.

Lifetime: the file stays after the last descriptor closes; its creator unlinks it.

See also: unix(7) ("Pathname socket ownership and permissions"), fchmod(2), umask(2),
zmq_setsockopt(3) ZMQ_USE_FD, zmq_ipc(7).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import zmq

__all__ = ["adopt_listener", "bind_private", "listen_private"]

MODE = 0o600


def bind_private(sock: socket.socket, path: Path) -> None:
    """Bind an ``AF_UNIX`` socket to *path*, created 0600 from the start."""
    os.fchmod(sock.fileno(), MODE)  # the inode's mode is what bind() gives the new file
    sock.bind(os.fspath(path))


def listen_private(path: Path, backlog: int) -> socket.socket:
    """A listening ``AF_UNIX`` stream socket on *path* (0600 from birth, close-on-exec).

    Raises OSError (the socket is closed) when *path* exists or cannot be made.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        bind_private(sock, path)
    except OSError:
        sock.close()
        raise
    try:
        sock.listen(backlog)  # from here on, connections queue in the kernel
    except OSError:
        sock.close()
        os.unlink(path)  # bind made it: ours to remove
        raise
    return sock


def adopt_listener(zsock: zmq.Socket[bytes], fd: int, address: str) -> None:
    """Make the ZeroMQ socket *zsock* serve *address* (``ipc://PATH``, ``tcp://HOST:PORT``)
    on *fd*, a socket already bound to that address and listening.

    ``ZMQ_USE_FD`` before ``zmq_bind`` makes libzmq take the descriptor over rather than
    create and bind one of its own. *fd* belongs to libzmq from this call on: closed with
    *zsock*, or here if libzmq refuses it. Raises ``zmq.ZMQError``.
    """
    try:
        zsock.setsockopt(zmq.USE_FD, fd)
    except zmq.ZMQError:
        os.close(fd)
        raise
    zsock.bind(address)
