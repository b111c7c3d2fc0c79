"""A throwaway ``redis-server`` on a free loopback port, for tests that need a real Redis.

Use :func:`redis_server` as a context manager, typically as the body of a fixture::

    @pytest.fixture
    def redis_srv() -> Iterator[RedisServer]:
        with redis_server() as server:
            yield server

Without the ``redis-server`` binary the test is skipped, unless
``FAILOVER_REQUIRE_REDIS=1`` is set (CI), in which case it fails: a missing Redis must
never silently turn the Redis tests into skips there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["RedisServer", "redis_server", "require_redis_server", "sentinel_group"]

# How long a fresh redis-server may take to answer PING.
_START_TIMEOUT = 10.0


def require_redis_server() -> str:
    """The ``redis-server`` binary's path; skip the test (or fail, under CI) without it."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server binary not found"
        if os.environ.get("FAILOVER_REQUIRE_REDIS") == "1":
            pytest.fail(f"{message}, and FAILOVER_REQUIRE_REDIS=1")
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    """Whether a Redis on ``port`` answers PING (raw RESP: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1``; no persistence, nothing on disk.

    :meth:`stop` and :meth:`start` take it down and bring it back on the same port (empty),
    so a test can simulate an outage.
    """

    def __init__(
        self, binary: str, port: int | None = None, args: tuple[str, ...] = (), cwd: str = ""
    ) -> None:
        self.binary = binary
        self.port = port if port is not None else _free_port()
        self.args = args  # more options (replicaof, cluster-enabled ...), or a config file
        # A directory of its own: a replica writes the RDB it receives there, and a server
        # started later in the same directory would load it.
        self._own_dir = not cwd
        self.cwd = cwd or tempfile.mkdtemp(prefix="failover-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if self.running:
            return self
        options = ["--bind", "127.0.0.1", "--appendonly", "no", "--daemonize", "no"]
        head = list(self.args[:1]) if self.args[:1] and self.args[0].endswith(".conf") else []
        self._proc = subprocess.Popen(
            [
                self.binary,
                *head,
                *("--port", str(self.port), "--save", "", *options),
                *self.args[len(head) :],
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.cwd,
        )
        give_up = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            if time.monotonic() > give_up:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Kill the server (its data is gone) and wait until the port refuses connections."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=5)

    def remove(self) -> None:
        """Stop the server and delete the directory it made for itself."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def client(self) -> Any:
        """A ``redis.Redis`` client on this server (imported here: redis is an extra)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=1)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running :class:`RedisServer`, killed on exit; skips without the binary."""
    server = RedisServer(require_redis_server())
    try:
        server.start()
    except RuntimeError:
        # Another process may have taken the probed port between probe and bind: once more.
        server.remove()
        server = RedisServer(server.binary)
        server.start()
    try:
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def sentinel_group(workdir: str, service: str = "svc") -> Iterator[tuple[RedisServer, ...]]:
    """A master, its replica and one Sentinel watching them (quick to fail over).

    Yields ``(master, replica, sentinel)``; the Sentinel declares the master down after
    300 ms and promotes the replica. Everything is killed on exit.
    """
    binary = require_redis_server()
    master = RedisServer(binary)
    replica = RedisServer(binary, args=("--replicaof", "127.0.0.1", str(master.port)))
    conf = os.path.join(workdir, "sentinel.conf")
    sentinel = RedisServer(binary, args=(conf, "--sentinel"), cwd=workdir)
    with open(conf, "w") as out:  # Sentinel rewrites its config file: a private one
        out.write(
            f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {service} 300\n"
            f"sentinel failover-timeout {service} 3000\n"
        )
    try:
        for server in (master, replica, sentinel):
            server.start()
        yield master, replica, sentinel
    finally:
        for server in (master, replica, sentinel):
            server.remove()
