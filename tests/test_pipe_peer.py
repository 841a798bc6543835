"""The pipe channel driven through a real forked peer and a real thread peer."""

from __future__ import annotations

import os
import signal
from array import array

import pytest

from daemonkit.bench.peer import Peer, payload_roundtrips
from daemonkit.channels import channel_class
from daemonkit.channels.base import PayloadEnd, PeerKind
from daemonkit.errors import PeerDiedError


@pytest.mark.parametrize("kind", ["process", "thread"])
@pytest.mark.parametrize("size", [0, 1, 4096, 65536 + 7, 1 << 20])
def test_pipe_round_trips_echo_every_byte(kind: PeerKind, size: int) -> None:
    n = 20
    with channel_class("pipe")(kind, size) as ch:
        peer = Peer(ch, kind, size, cpu=None)
        peer.start()
        try:
            with ch.open("client") as end, peer.watch(timeout=10):
                assert isinstance(end, PayloadEnd)
                assert peer.report()["ready"]
                msg = memoryview(os.urandom(size))
                rbuf = memoryview(bytearray(max(size, 1)))
                samples, got = array("q", [0] * n), array("q", [0] * n)
                peer.command(n)
                payload_roundtrips(end, msg, rbuf, samples, got)
                counts = peer.report()
                assert list(got) == [size] * n
                assert bytes(rbuf[:size]) == bytes(msg)
                assert all(s > 0 for s in samples)
                assert counts["voluntary"] >= 0
        finally:
            peer.stop()
        if kind == "process":
            assert peer.exit_status is not None and os.WIFEXITED(peer.exit_status)


def test_killed_peer_is_reported_not_waited_for() -> None:
    with channel_class("pipe")("process", 64) as ch:
        peer = Peer(ch, "process", 64, cpu=None)
        peer.start()
        try:
            with ch.open("client") as end, peer.watch(timeout=10):
                assert isinstance(end, PayloadEnd)
                peer.report()
                assert peer.pid is not None
                os.kill(peer.pid, signal.SIGKILL)
                with pytest.raises(PeerDiedError):
                    rbuf = memoryview(bytearray(64))
                    end.send(memoryview(bytes(64)))
                    end.recv_into(rbuf)
        finally:
            peer.stop()
