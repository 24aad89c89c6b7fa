"""The Python Redis store against a real redis-server (and a real cluster):
the table's answers, leases and fencing, a re-sent begin, typed errors --
and the scripts are byte for byte the Rust crate's files."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import redis
import redis.asyncio

import stormguard as sg
from stormguard import _core
from stormguard.redis import (
    SCRIPTS,
    AsyncRedisStore,
    RedisStore,
    StaleTicketError,
    UnavailableError,
)

from conftest import RedisCluster, RedisServer, free_port

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "adapters" / "redis" / "scripts"


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Callable[..., RedisStore]]:
    """Makes stores on the shared server, each under a prefix of its own,
    and closes them after the test."""
    made: List[RedisStore] = []

    def make(lease: float = 60.0) -> RedisStore:
        made.append(RedisStore.from_url(redis_server.url, prefix=f"t{uuid.uuid4().hex[:8]}:",
                                        lease=lease))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_the_scripts_are_the_rust_crates_files() -> None:
    files = {p.stem: p.read_text() for p in SCRIPTS_DIR.glob("*.lua")}
    assert set(files) == {"begin", "complete", "abort", "inspect"}
    assert SCRIPTS == files


def test_the_verbs_answer_as_the_table_does(store: Callable[..., RedisStore]) -> None:
    s = store()
    first = s.begin("k1", b"alice 30")
    assert first.kind == "execute" and first.ticket is not None
    assert first.ticket.fencing_token >= 1
    assert (s.begin("k1", b"alice 30").kind, s.begin("k1", b"alice 30").status) == ("in_progress", 409)
    assert (s.begin("k1", b"alice 99").kind, s.begin("k1", b"alice 99").status) == ("mismatch", 422)
    s.complete(first.ticket, b"receipt 1")
    replay = s.begin("k1", b"alice 30")
    assert (replay.kind, replay.response) == ("replay", b"receipt 1")
    s.complete(first.ticket, b"receipt 1")  # a re-sent complete: already stored
    with pytest.raises(StaleTicketError):
        s.abort(first.ticket)
    second = s.begin("k2", b"")
    assert second.ticket is not None
    s.abort(second.ticket)
    with pytest.raises(StaleTicketError):
        s.complete(second.ticket, b"x")
    third = s.begin("k2", b"")
    assert third.ticket is not None and third.ticket.fencing_token > second.ticket.fencing_token
    entry = s.inspect("k2")
    assert entry is not None and entry.state == "running"
    assert entry.expires_in is not None and 0 < entry.expires_in <= 60
    assert s.inspect("never") is None


def test_leases_end_and_late_workers_are_fenced(store: Callable[..., RedisStore]) -> None:
    s = store(lease=0.3)
    late = s.begin("k", b"fp").ticket
    assert late is not None and late.lease_ends <= time.monotonic() + 0.3
    time.sleep(0.4)
    assert s.inspect("k") is None  # Redis deleted it when the lease ended
    takeover = s.begin("k", b"fp").ticket
    assert takeover is not None and takeover.fencing_token > late.fencing_token
    with pytest.raises(StaleTicketError):
        s.complete(late, b"late")
    s.complete(takeover, b"fresh")
    assert s.begin("k", b"fp").response == b"fresh"


def test_a_re_sent_begin_is_the_same_claim(redis_server: RedisServer) -> None:
    with redis.Redis(port=redis_server.port) as client:
        begin = client.register_script(SCRIPTS["begin"])
        entry = _core.redis_entry_key("resend:", "k")
        keys = [entry, _core.redis_fence_key(entry)]
        first = begin(keys=keys, args=[b"fp", "owner-a", 60000, 120000])
        assert begin(keys=keys, args=[b"fp", "owner-a", 60000, 120000]) == first
        assert begin(keys=keys, args=[b"fp", "owner-b", 60000, 120000])[0] == b"in_progress"


def test_keys_and_settings_are_checked(
    redis_server: RedisServer, store: Callable[..., RedisStore]
) -> None:
    s = store()
    with pytest.raises(ValueError, match="invalid key: must not be empty"):
        s.begin("", b"fp")
    with pytest.raises(ValueError, match="invalid key: at most 255 bytes, found 256"):
        s.begin("k" * 256, b"fp")
    with pytest.raises(ValueError, match="invalid fingerprint"):
        s.begin("k", b"x" * 1025)
    with redis.Redis(port=redis_server.port) as client:
        with pytest.raises(ValueError, match="invalid prefix"):
            RedisStore(client, prefix="a{b}")
        with pytest.raises(ValueError, match="invalid lease"):
            RedisStore(client, lease=0)
        with pytest.raises(ValueError, match="invalid ttl"):
            RedisStore(client, ttl=float("nan"))
        with pytest.raises(ValueError, match="invalid attempts"):
            RedisStore(client, attempts=0)
    # Braces in keys are escaped, never a second hash tag.
    assert _core.redis_entry_key("p:", "a}b{") == "p:{a%7Db%7B}"


def test_unreachable_redis_is_unavailable() -> None:
    started = time.monotonic()
    with RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/", attempt_timeout=0.2,
                             attempts=2, deadline=1.0) as s, sg.testing():
        with pytest.raises(UnavailableError) as info:
            s.begin("k", b"fp")
    assert info.value.status == 503 and info.value.operation == "begin"
    assert time.monotonic() - started < 3


def test_stopped_then_restarted_redis_resumes_with_its_data() -> None:
    server = RedisServer()
    try:
        with RedisStore.from_url(server.url, attempt_timeout=0.3, prefix="restart:", attempts=2,
                                 deadline=1.0) as s:
            done = s.begin("done", b"fp").ticket
            assert done is not None
            s.complete(done, b"r")
            running = s.begin("running", b"fp").ticket
            assert running is not None
            server.stop()
            with pytest.raises(UnavailableError):
                s.begin("new", b"fp")
            with pytest.raises(UnavailableError):
                s.complete(running, b"r")
            server.restart()
            assert s.begin("done", b"fp").response == b"r"
            s.complete(running, b"r2")
            assert s.begin("running", b"fp").response == b"r2"
    finally:
        server.close()


def test_the_async_store_answers_the_same(redis_server: RedisServer) -> None:
    async def run() -> None:
        async with AsyncRedisStore.from_url(redis_server.url, prefix="async:") as s:
            first = await s.begin("k", b"fp")
            assert first.kind == "execute" and first.ticket is not None
            assert (await s.begin("k", b"fp")).status == 409
            assert (await s.begin("k", b"other")).status == 422
            await s.complete(first.ticket, b"r")
            assert (await s.begin("k", b"fp")).response == b"r"
            with pytest.raises(StaleTicketError):
                await s.abort(first.ticket)
            entry = await s.inspect("k")
            assert entry is not None and entry.state == "done"

    asyncio.run(run())


def test_on_a_cluster_each_request_stays_in_one_slot(redis_cluster: RedisCluster) -> None:
    with RedisStore.from_url(f"redis://{redis_cluster.nodes[0].url[8:]}", cluster=True,
                             prefix="cluster:") as s, redis_cluster.client() as client:
        any_client: Any = client  # redis-py's stubs differ between releases
        slots = set()
        for i in range(200):
            key = f"key-{i}-{{x}}" if i % 7 == 0 else f"key-{i}"
            entry = _core.redis_entry_key("cluster:", key)
            fence = _core.redis_fence_key(entry)
            slot = int(any_client.cluster_keyslot(entry))
            assert slot == int(any_client.cluster_keyslot(fence)) == _core.redis_hash_slot(entry)
            slots.add(slot)
            begun = s.begin(key, b"fp")
            assert begun.ticket is not None
            s.complete(begun.ticket, key.encode())
            assert s.begin(key, b"fp").response == key.encode()
        # The keys spread over the cluster's three masters.
        owners = {
            any_client.get_node_from_key(_core.redis_entry_key("cluster:", f"key-{i}")).port
            for i in range(200)
        }
        assert len(owners) == 3 and len(slots) > 100


def test_a_store_closes_the_client_it_made_and_only_that(redis_server: RedisServer) -> None:
    # A closed client drops its connection: its next command opens another,
    # with another CLIENT ID.
    with RedisStore.from_url(redis_server.url, prefix="close:") as made:
        made.inspect("k")
        before = made.client.client_id()
    assert made.client.client_id() != before
    made.client.close()

    with redis.Redis(port=redis_server.port) as client:
        with RedisStore(client, prefix="close:") as given:
            given.inspect("k")
            before = client.client_id()
        assert client.client_id() == before

    async def run() -> None:
        async with AsyncRedisStore.from_url(redis_server.url, prefix="close:") as made:
            await made.inspect("k")
            before = await made.client.client_id()
        assert await made.client.client_id() != before
        await made.client.aclose()

        async with redis.asyncio.Redis(port=redis_server.port) as client:
            async with AsyncRedisStore(client, prefix="close:") as given:
                await given.inspect("k")
                before = await client.client_id()
            assert await client.client_id() == before

    asyncio.run(run())
