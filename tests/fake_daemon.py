"""A lying daemon for the hostile tests: stdlib only, so another user can run it with any python3.

Usage: ``python3 fake_daemon.py RUNTIME_DIR LIES_JSON SIGNAL_LOG``

It makes RUNTIME_DIR (0700) if absent, locks ``daemonkit.pid`` in it the way the real daemon
does, listens on ``control.sock`` and answers every request from the table in LIES_JSON
(``{"status": reply, "reload": reply, "open:fifo": reply, ...}``; a reply that is a string is
sent as raw bytes, without a newline added). ``$PID`` in a reply becomes its own pid. Planted
files: ``{"plant": {"NAME": "symlink:TARGET" | "file" | "fifo"}}`` in RUNTIME_DIR, names with
``$PID`` expanded. Every signal it receives (TERM, HUP, INT, USR1, USR2) is appended to
SIGNAL_LOG and otherwise ignored. It prints ``ready`` once listening and runs until SIGKILL.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading


def main() -> None:
    rdir, lies_path, signal_log = sys.argv[1:4]
    with open(lies_path) as f:
        lies = json.loads(f.read().replace("$PID", str(os.getpid())))
    os.makedirs(rdir, mode=0o700, exist_ok=True)
    for name, what in lies.get("plant", {}).items():
        path = os.path.join(rdir, name)
        if what.startswith("symlink:"):
            os.symlink(what.removeprefix("symlink:"), path)
        elif what == "fifo":
            os.mkfifo(path, 0o600)
        else:
            with open(path, "w"):
                pass

    def record(signum: int, frame: object) -> None:
        with open(signal_log, "a") as log:
            log.write(f"{signal.Signals(signum).name}\n")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, record)
    pidfd = os.open(os.path.join(rdir, "daemonkit.pid"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.lockf(pidfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(pidfd, f"{os.getpid()}\n".encode())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.path.join(rdir, "control.sock"))
    listener.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, lies), daemon=True).start()


def serve(conn: socket.socket, lies: dict[str, object]) -> None:
    buf = b""
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                key = req["cmd"] + (f":{req['endpoint']}" if req["cmd"] == "open" else "")
                reply = lies.get(key, {"error": "no lie for " + key})
                if isinstance(reply, str):
                    conn.sendall(reply.encode())
                else:
                    conn.sendall(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    main()
