"""Real servers for the Redis store's tests, started by the tests on free
ports on 127.0.0.1 and stopped afterwards: a ``redis-server`` without
persistence, a 3-master Redis Cluster, and a fleet of uvicorn replicas of
an app behind `stormguard.asgi.IdempotencyMiddleware`.

``redis-server`` and ``redis-cli`` must be installed (the test command,
``scripts/test``, installs Debian's package when they are missing).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

TESTS = Path(__file__).resolve().parent


# Every socket the tests (and their fixtures) open, to find those that only
# the cycle collector would free. Such a socket is closed by whichever
# finalizer the collector happens to run first -- its owner's (quietly) or
# its own (a ResourceWarning: an error here, raised in whatever test is
# running then, or at exit). Checking after each test turns that rare,
# order-dependent failure into a certain one, at the test that leaked it.
_SOCKETS: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
_socket_init = socket.socket.__init__


def _recording_init(self: socket.socket, *args: Any, **kwargs: Any) -> None:
    _socket_init(self, *args, **kwargs)
    _SOCKETS.add(self)


socket.socket.__init__ = _recording_init  # type: ignore[method-assign]


def _open(sockets: "weakref.WeakSet[socket.socket]") -> List[socket.socket]:
    return [s for s in list(sockets) if s.fileno() != -1]


@pytest.fixture(autouse=True)
def no_socket_left_to_the_cycle_collector() -> Iterator[None]:
    """Fails a test after which an open socket is left in a reference
    cycle (a client nobody closed): every socket still open is checked, so
    a fixture's leak is found too."""
    yield
    left = [weakref.ref(s) for s in _open(_SOCKETS)]
    if not left:
        return
    described = {id(r): repr(r()) for r in left}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    freed = [described[id(r)] for r in left if r() is None]
    assert not freed, f"sockets left open for the cycle collector to close: {freed}"


def free_port(bus: bool = False) -> int:
    """A port nothing listens on (and, with ``bus``, nor on port + 10000,
    the cluster bus)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not bus:
            return port
        if port + 10000 <= 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Redis (Debian: apt-get install redis-server)")
    return path


class RedisServer:
    """A ``redis-server`` process of the test's own: ``--save ''
    --appendonly no`` in a fresh directory. `stop` saves a snapshot there
    on purpose (``SHUTDOWN SAVE``) so that `restart` comes back with the
    same data, as a Redis with persistence would."""

    def __init__(self, extra: Sequence[str] = ()) -> None:
        self.dir = tempfile.mkdtemp(prefix="stormguard-redis-")
        self.port = free_port(bus=True)
        self.extra = list(extra)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start()

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(
                [_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(deadline):
                return
            self.proc.kill()
            self.proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.1)  # the port may linger after a stop

    def _wait_ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with self.client() as client:
                    ready = client.ping()
                if ready:
                    return True
            except redis.exceptions.RedisError:
                time.sleep(0.02)
        return False

    def client(self) -> "redis.Redis":
        # No retries of redis-py's own (ten, with backoff, by default): a
        # refused connection while the server starts must fail at once.
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5,
                           retry=Retry(NoBackoff(), 0))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        try:
            with self.client() as client:
                client.shutdown(save=True)
        except redis.exceptions.RedisError:
            pass
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three masters, no replicas, created with ``redis-cli --cluster
    create``."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [
            RedisServer(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-node-timeout", "2000"])
            for _ in range(masters)
        ]
        subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *[f"127.0.0.1:{n.port}" for n in self.nodes],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )
        deadline = time.monotonic() + 30
        while not all(self._ok(n) for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not converge")
            time.sleep(0.1)

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        with node.client() as client:
            any_client: Any = client  # redis-py's stubs differ between releases
            info = any_client.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text

    @property
    def startup(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def client(self) -> "redis.RedisCluster":
        return redis.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode("127.0.0.1", n.port)  # type: ignore[no-untyped-call]
                for n in self.nodes
            ],
            socket_timeout=5, retry=Retry(NoBackoff(), 0),
        )

    def close(self) -> None:
        for node in self.nodes:
            node.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster()
    yield cluster
    cluster.close()


class Fleet:
    """Replicas of ``fleet_app.py`` under uvicorn, each a real process on
    a port of its own, sharing one Redis (or cluster). Replica 0 may crash
    itself on request (``x-fault: crash``); a watcher restarts any replica
    that dies, on the same port."""

    def __init__(self, redis_env: Dict[str, str], replicas: int = 3, lease: float = 3.0,
                 slow: float = 1.0) -> None:
        self.ledger_dir = tempfile.mkdtemp(prefix="stormguard-ledger-")
        self.ports = [free_port() for _ in range(replicas)]
        self.env = dict(os.environ, FLEET_LEDGER_DIR=self.ledger_dir, FLEET_LEASE=str(lease),
                        FLEET_SLOW=str(slow), **redis_env)
        self.procs: List[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self._closing = threading.Event()
        self._lock = threading.Lock()
        for i in range(replicas):
            self.procs.append(self._spawn(i))
        for i in range(replicas):
            self._wait_ready(i)
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _spawn(self, i: int) -> "subprocess.Popen[bytes]":
        env = dict(self.env, FLEET_REPLICA=str(i), FLEET_CRASHABLE="1" if i == 0 else "0")
        with open(os.path.join(self.ledger_dir, f"replica-{i}.log"), "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "fleet_app:app", "--app-dir", str(TESTS),
                 "--host", "127.0.0.1", "--port", str(self.ports[i]), "--log-level", "warning",
                 "--no-access-log", "--timeout-graceful-shutdown", "1"],
                env=env, stdout=log, stderr=log,
            )

    def _wait_ready(self, i: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.ports[i]), timeout=0.5) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica {i} did not start; see {self.ledger_dir}/replica-{i}.log")

    def _watch(self) -> None:
        while not self._closing.wait(0.05):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self._closing.is_set():
                    with self._lock:
                        self.restarts += 1
                    self.procs[i] = self._spawn(i)
                    self._wait_ready(i)

    def ledger(self) -> Counter[str]:
        """Charges per idempotency key, from every replica's ledger."""
        charges: Counter[str] = Counter()
        for path in Path(self.ledger_dir).glob("ledger-*.log"):
            for line in path.read_text().splitlines():
                key, _, _ = line.split("\t")
                charges[key] += 1
        return charges

    def charge_ids(self) -> Dict[str, List[str]]:
        ids: Dict[str, List[str]] = {}
        for path in Path(self.ledger_dir).glob("ledger-*.log"):
            for line in path.read_text().splitlines():
                key, charge, _ = line.split("\t")
                ids.setdefault(key, []).append(charge)
        return ids

    def close(self) -> None:
        self._closing.set()
        self._watcher.join(timeout=5)
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.ledger_dir, ignore_errors=True)


def redis_env(server: RedisServer) -> Dict[str, str]:
    return {"FLEET_REDIS_PORT": str(server.port)}


def cluster_env(cluster: RedisCluster) -> Dict[str, str]:
    return {"FLEET_REDIS_CLUSTER": cluster.startup}


def ports_of(fleet: Fleet) -> Tuple[int, ...]:
    return tuple(fleet.ports)
