"""Cluster mode beyond the shared contract (which runs on the cluster too, see conftest): where keys
land, the sharded subscription bus, ACL users and TLS, and what cluster errors become.

A real cluster on loopback (``redis_cluster``, 3 primaries and 3 replicas, shared by the session);
the ACL and TLS tests start servers of their own. Failover under load is in tests/fleet.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp.server.subscriptions import ServerEvent, ToolsListChanged
from pydantic import ValidationError
from redis import exceptions as redis_errors

from app.backends import BackendUnavailable, RedisBackend, RedisClient, RedisConnection, RedisMode
from app.backends.subscriptions import RedisSubscriptionBus
from app.settings import BackendSettings
from tests.backends.conftest import LENIENT_SECONDS, lenient_redis_backend
from tests.support.redis_cluster import RedisCluster, TlsNode
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio

ACL_USER = ["--user", "default", "off", "--user", "svc", "on", ">s3cret-pw", "~*", "&*", "+@all"]


def keyslot(cluster: RedisCluster, key: str) -> str:
    return cluster.cli(cluster.nodes[0].port, "CLUSTER", "KEYSLOT", key).strip()


async def test_the_cluster_has_three_primaries_each_with_a_replica(redis_cluster: RedisCluster) -> None:
    roles = sorted(redis_cluster.roles().values())
    assert roles == ["master"] * 3 + ["slave"] * 3


async def test_a_cache_entry_and_its_tags_share_one_slot(redis_cluster: RedisCluster) -> None:
    backend = lenient_redis_backend(redis_cluster)
    await backend.open()
    try:
        await backend.cache.set("k", b"v", ttl_seconds=30, tags=["alpha", "beta"])
        prefix = backend.key_prefix
        names = [f"{prefix}{{cache}}:c:k", f"{prefix}{{cache}}:t:alpha", f"{prefix}{{cache}}:t:beta"]
        assert len({keyslot(redis_cluster, name) for name in names}) == 1
        owner = redis_cluster.node_for_key(names[0])
        assert redis_cluster.cli(owner.port, "HGET", names[0], "v").strip() == "v"
        assert await backend.cache.invalidate_tags(["beta", "alpha"]) == 1
        assert redis_cluster.cli(owner.port, "EXISTS", *names).strip() == "0"
    finally:
        await backend.close()


async def test_the_bus_uses_sharded_pub_sub_across_replicas(redis_cluster: RedisCluster) -> None:
    backends = [lenient_redis_backend(redis_cluster) for _ in range(2)]
    prefix = backends[0].key_prefix
    backends[1] = RedisBackend(RedisConnection(redis_cluster.url, key_prefix=prefix, mode="cluster"))
    for backend in backends:
        await backend.open()
    buses = [RedisSubscriptionBus(backend.redis) for backend in backends]
    heard: list[list[ServerEvent]] = [[], []]
    for bus, events in zip(buses, heard, strict=True):
        bus.subscribe(events.append)
    try:
        async with anyio.create_task_group() as group:
            for bus in buses:
                group.start_soon(bus.run)
            with anyio.fail_after(15):
                while not all(bus.connected for bus in buses):
                    await anyio.sleep(0.05)
                while ToolsListChanged() not in heard[1]:
                    await buses[0].publish(ToolsListChanged())
                    await anyio.sleep(0.05)
            assert ToolsListChanged() in heard[0]  # the publisher hears its own event back
            owner = redis_cluster.node_for_key(f"{prefix}events")
            shard_channels = redis_cluster.cli(owner.port, "PUBSUB", "SHARDCHANNELS")
            assert f"{prefix}events" in shard_channels  # a shard channel on the slot's primary
            assert f"{prefix}events" not in redis_cluster.cli(owner.port, "PUBSUB", "CHANNELS")
            group.cancel_scope.cancel()
    finally:
        for backend in backends:
            await backend.close()


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """Three primaries, no replicas, whose only user is ``svc`` (the default user is off)."""
    cluster = RedisCluster(
        tmp_path_factory.mktemp("acl-cluster"),
        replicas_per_primary=0,
        extra_args=ACL_USER,
        cli_auth=["--user", "svc", "--pass", "s3cret-pw", "--no-auth-warning"],
    )
    with cluster:
        yield cluster


@pytest.mark.parametrize("mode", ["single", "cluster"])
async def test_an_acl_user_in_the_url_works_and_a_wrong_one_is_unavailable(
    mode: str, acl_cluster: RedisCluster, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "acl", extra_args=ACL_USER) as single:
        port = acl_cluster.nodes[1].port if mode == "cluster" else single.port
        redis_mode: RedisMode = "cluster" if mode == "cluster" else "single"
        lenient = {"socket_timeout_seconds": LENIENT_SECONDS, "connect_timeout_seconds": LENIENT_SECONDS}
        good = RedisBackend(RedisConnection(f"redis://svc:s3cret-pw@127.0.0.1:{port}", mode=redis_mode, **lenient))
        bad = RedisBackend(RedisConnection(f"redis://svc:wrong-pw@127.0.0.1:{port}", mode=redis_mode, **lenient))
        for backend in (good, bad):
            await backend.open()
        try:
            assert (await good.rate_limits.acquire("p", capacity=1, refill_per_second=1)).allowed
            assert (await good.health()).status == "healthy"
            with pytest.raises(BackendUnavailable) as refused:
                await bad.rate_limits.acquire("p", capacity=1, refill_per_second=1)
            assert "wrong-pw" not in str(refused.value)
            assert "svc" not in str(refused.value)
            assert not refused.value.maybe_applied  # a refused handshake ran nothing
        finally:
            for backend in (good, bad):
                await backend.close()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, tls_cert: tuple[Path, Path]) -> Iterator[TlsNode]:
    """A TLS-only redis-server (Debian's is built with TLS) whose only user is ``svc``."""
    with TlsNode(tmp_path_factory.mktemp("tls-single"), *tls_cert, ACL_USER) as server:
        yield server


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory, tls_cert: tuple[Path, Path]) -> Iterator[RedisCluster]:
    """Three TLS-only primaries (bus and replication over TLS too) whose only user is ``svc``."""
    cluster = RedisCluster(
        tmp_path_factory.mktemp("tls-cluster"),
        replicas_per_primary=0,
        extra_args=ACL_USER,
        cli_auth=["--user", "svc", "--pass", "s3cret-pw", "--no-auth-warning"],
        tls=tls_cert,
    )
    with cluster:
        yield cluster


@pytest.mark.parametrize("mode", ["single", "cluster"])
async def test_rediss_with_an_acl_user_works(
    mode: str, request: pytest.FixtureRequest, tls_cert: tuple[Path, Path]
) -> None:
    server: TlsNode | RedisCluster = request.getfixturevalue("tls_cluster" if mode == "cluster" else "tls_redis")
    port = server.nodes[1].port if isinstance(server, RedisCluster) else server.port
    redis_mode: RedisMode = "cluster" if mode == "cluster" else "single"
    ca = tls_cert[0]
    lenient = {"socket_timeout_seconds": LENIENT_SECONDS, "connect_timeout_seconds": LENIENT_SECONDS}
    url = f"rediss://svc:s3cret-pw@127.0.0.1:{port}?ssl_ca_certs={ca}"
    backend = RedisBackend(RedisConnection(url, mode=redis_mode, **lenient))
    plain = RedisBackend(RedisConnection(f"redis://svc:s3cret-pw@127.0.0.1:{port}", mode=redis_mode))
    for each in (backend, plain):
        await each.open()
    try:
        for i in range(6):  # several keys: several slots, so several nodes in cluster mode
            assert (await backend.rate_limits.acquire(f"p{i}", capacity=2, refill_per_second=1)).allowed
        await backend.cache.set("k", b"v", ttl_seconds=10, tags=["t"])
        assert await backend.cache.get("k") == b"v"
        assert (await backend.health()).status == "healthy"
        with pytest.raises(BackendUnavailable):  # plain text to a TLS port: unavailable, never a hang
            await plain.ping()
    finally:
        for each in (backend, plain):
            await each.close()


@pytest.mark.parametrize(
    ("error", "ran"),
    [
        (redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"), False),
        (redis_errors.MasterDownError("MASTERDOWN Link with MASTER is down"), False),
        (redis_errors.TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"), False),
        (redis_errors.MovedError("6099 127.0.0.1:17101"), False),
        (redis_errors.AskError("6099 127.0.0.1:17101"), False),
        (redis_errors.SlotNotCoveredError("Slot 6099 is not covered by the cluster."), False),
        (redis_errors.RedisClusterUnreachableError("127.0.0.1:17101 unreachable"), False),
        (redis_errors.TimeoutError("Timeout reading from 127.0.0.1:17101"), True),
    ],
)
async def test_cluster_errors_are_unavailable_without_redis_text(error: Exception, ran: bool) -> None:
    conn = RedisConnection("redis://127.0.0.1:1", mode="cluster")
    with pytest.raises(BackendUnavailable) as caught, conn.unavailable_on_failure("acquire", writes=True):
        raise error
    assert str(caught.value) == f"redis acquire: {type(error).__name__}"  # the class, never Redis' text
    assert caught.value.maybe_applied is ran


async def test_an_unreachable_cluster_after_a_sent_command_may_have_applied_it() -> None:
    conn = RedisConnection("redis://127.0.0.1:1", mode="cluster")
    unreachable = redis_errors.RedisClusterUnreachableError("no node answered")
    unreachable.__cause__ = redis_errors.TimeoutError("Timeout reading from socket")
    with pytest.raises(BackendUnavailable) as caught, conn.unavailable_on_failure("tasks create", writes=True):
        raise unreachable
    assert caught.value.maybe_applied


async def test_a_cluster_with_no_node_up_is_unavailable_and_ran_nothing() -> None:
    backend = RedisBackend(RedisConnection(f"redis://127.0.0.1:{free_port()}", mode="cluster"))
    await backend.open()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await backend.idempotency.begin("k", "fp", lock_ttl_seconds=5)
        assert not caught.value.maybe_applied
        assert (await backend.health()).status == "unhealthy"
    finally:
        await backend.close()


def test_cluster_mode_refuses_braces_in_the_prefix_and_unix_sockets() -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisConnection("redis://127.0.0.1:1", key_prefix="a{b}:", mode="cluster")
    with pytest.raises(ValidationError, match="MCPS_REDIS_KEY_PREFIX"):
        BackendSettings.model_validate({"redis_mode": "cluster", "redis_key_prefix": "{x}:"})
    with pytest.raises(ValidationError, match="redis:// or rediss://"):
        BackendSettings.model_validate({"redis_mode": "cluster", "redis_url": "unix:///tmp/redis.sock"})
    assert BackendSettings.model_validate({"redis_key_prefix": "{x}:"}).redis_mode == "single"  # single mode: unchanged
    conn = RedisConnection("redis://127.0.0.1:1", mode="cluster")
    with pytest.raises(ValueError, match="braces"):
        conn.slot_group("a}b")
    assert conn.slot_group("owner%3A1") == "{owner%3A1}"
    assert RedisConnection("redis://127.0.0.1:1").slot_group("owner%3A1") == "owner%3A1"


async def test_a_burst_beyond_the_pool_waits_for_a_connection(redis_cluster: RedisCluster) -> None:
    """redis-py's cluster client fails at once when a node's pool is full; the connection's gate makes
    a burst wait instead (as single mode's blocking pool does), so every call of the burst succeeds."""
    conn = RedisConnection(
        redis_cluster.url,
        mode="cluster",
        key_prefix=f"burst-{uuid.uuid4().hex[:8]}:",
        max_connections=4,
        socket_timeout_seconds=LENIENT_SECONDS,
        connect_timeout_seconds=LENIENT_SECONDS,
    )
    backend = RedisBackend(conn)
    await backend.open()
    try:
        decisions = await asyncio.gather(
            *(backend.rate_limits.acquire("same", capacity=100, refill_per_second=0.0001) for _ in range(40))
        )
        assert all(d.allowed for d in decisions)
        assert min(d.remaining for d in decisions) == pytest.approx(60, abs=0.01)  # each one counted
    finally:
        await backend.close()


async def test_waiting_past_the_deadline_for_a_connection_is_a_refusal(redis_cluster: RedisCluster) -> None:
    conn = RedisConnection(redis_cluster.url, mode="cluster", max_connections=1, socket_timeout_seconds=0.05)
    conn.open()
    release = asyncio.Event()

    async def hold(client: RedisClient) -> None:
        await release.wait()

    try:
        holder = asyncio.create_task(conn.run("hold", hold))
        await asyncio.sleep(0)
        with pytest.raises(BackendUnavailable) as caught:
            await conn.run("acquire", lambda client: client.ping(), writes=True)
        assert str(caught.value) == "redis acquire: MaxConnectionsError"
        assert not caught.value.maybe_applied  # it was never sent
        release.set()
        with pytest.raises(BackendUnavailable):  # the holder outlived its own deadline meanwhile
            await holder
    finally:
        await conn.close()
