"""Access-token revocation: auth_service writes it, every service enforces it.

auth_service revokes one access token (logout) or every access token of a user issued
before a moment (deleted, role or password changed). Each revocation is a Redis key that
lives as long as such a token can (:func:`access_token_revoked_key`,
:func:`user_revoked_before_key`), and, on a single Redis, a message on the database's
revocation channel.

Every service checks every authenticated request against them. Reading the keys costs a
Redis round trip per request, the dearest part of authenticating one (two system calls
and a wake-up of Redis on these machines). So each process keeps a mirror instead
(:class:`RevocationMirror`): it subscribes to the channel, then copies the keys, and from
then on answers from memory, as strictly as the round trip did:

- The writer publishes, then sends Redis one more command (``PING``) before it answers
  its caller. Redis writes a published message into its subscribers' sockets before it
  reads a later command, so once that answer came, the message is in every mirror's
  socket (unless that socket is full: thousands of revocations the mirror left unread).
- A check reads whatever its mirror's socket holds (a non-blocking ``recv``, no round
  trip, nobody woken) before it answers. A request sent after the revocation was
  answered therefore finds it, whichever process and event-loop turn serves it.
- While the mirror is not in step (starting, or its connection lost and being rebuilt:
  subscribe first, then copy the keys again), checks read the keys as before, and fail
  closed (503) when Redis cannot answer.

A Redis Cluster keeps the round trip per request (:class:`RedisAccessRevocation`): its
keys spread over the nodes, which the mirror's single connection does not follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import hiredis
from prometheus_client import Counter
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from ticketing_common.errors import ServiceUnavailable
from ticketing_common.security import Principal

logger = logging.getLogger("ticketing.revocation")

CHECKS = Counter(
    "access_revocation_checks_total",
    "Access-token revocation checks, by where they were answered (mirror: from memory)",
    ["source"],
)
_FROM_MIRROR = CHECKS.labels("mirror")
_FROM_REDIS = CHECKS.labels("redis")

#: the mirror pings Redis this often on its connection, and drops expired entries
KEEPALIVE_SECONDS = 5.0
#: a connection that answered no ping for this long is given up and rebuilt
SILENCE_SECONDS = 3 * KEEPALIVE_SECONDS
CONNECT_SECONDS = 2.0
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0)
_RECV_BYTES = 65536
_SCAN_COUNT = 1000
_USERS_PREFIX = "auth:user_revoked_before:"
_TOKENS_PREFIX = "auth:access_revoked:"


def user_revoked_before_key(user_id: int) -> str:
    """Redis key: access tokens of this user issued before this time (ms) are revoked."""
    return f"{_USERS_PREFIX}{user_id}"


def access_token_revoked_key(jti: str) -> str:
    """Redis key: this one access token is revoked (set by logout until the token expires)."""
    return f"{_TOKENS_PREFIX}{jti}"


def revocation_channel(db: int) -> str:
    """The channel of one Redis database's revocations (channels are server-wide, keys are
    per database: two stacks sharing a server must not take each other's)."""
    return f"auth:revocations:{db}"


# -- writing (auth_service) --------------------------------------------------------------


async def revoke_access_token(redis: Any, jti: str, ttl_seconds: int) -> None:
    """Refuse one access token everywhere from now on, for ``ttl_seconds``."""
    expires_ms = _now_ms() + ttl_seconds * 1000
    await _write(redis, access_token_revoked_key(jti), "1", ttl_seconds, f"t {jti} {expires_ms}")


async def revoke_user_tokens(redis: Any, user_id: int, before_ms: int, ttl_seconds: int) -> None:
    """Refuse everywhere, from now on, the user's access tokens issued before ``before_ms``."""
    expires_ms = _now_ms() + ttl_seconds * 1000
    message = f"u {user_id} {before_ms} {expires_ms}"
    await _write(redis, user_revoked_before_key(user_id), str(before_ms), ttl_seconds, message)


async def _write(redis: Any, key: str, value: str, ttl_seconds: int, message: str) -> None:
    if isinstance(redis, RedisCluster):  # no mirrors: every check reads the key
        await redis.set(key, value, ex=ttl_seconds)
        return
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, value, ex=ttl_seconds)
        pipe.publish(revocation_channel(db), message)
        await pipe.execute()
    # Answered only after Redis wrote the message into every mirror's socket (see above).
    await redis.ping()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- checking (every service) ------------------------------------------------------------


class AccessRevocation(Protocol):
    """Is this principal's token revoked? (``app.state.access_revocation``)"""

    async def __call__(self, principal: Principal) -> bool: ...

    def running(self) -> contextlib.AbstractAsyncContextManager[None]: ...


class RedisAccessRevocation:
    """Each check reads the two keys: one ``MGET`` on a single Redis (a pipeline of two
    commands cost about a third more CPU per request, measured here), a pipeline on a
    cluster, whose slots part the two keys. When Redis cannot answer the check fails
    closed (503) rather than admitting a revoked token."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._one_node = not isinstance(redis, RedisCluster)

    async def __call__(self, principal: Principal) -> bool:
        _FROM_REDIS.inc()
        keys = (user_revoked_before_key(principal.user_id), access_token_revoked_key(principal.jti))
        try:
            if self._one_node:
                revoked_before, token_revoked = await self.redis.mget(keys)
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(keys[0])
                    pipe.exists(keys[1])
                    revoked_before, token_revoked = await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailable("cannot check token revocation right now") from exc
        if token_revoked:
            return True
        return revoked_before is not None and principal.issued_at_ms < int(revoked_before)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Nothing to keep running: each check reads Redis."""
        yield


class RevocationMirror:
    """The revocations of one Redis database, kept in memory (see the module's text)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        kwargs = redis.connection_pool.connection_kwargs
        self._address = (kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379)))
        self._channel = revocation_channel(kwargs.get("db", 0))
        self._per_request = RedisAccessRevocation(redis)
        #: jti -> when its revocation expires (time.time())
        self._tokens: dict[str, float] = {}
        #: user id -> (tokens issued before this many ms are revoked, when that expires)
        self._users: dict[int, tuple[int, float]] = {}
        self._sock: socket.socket | None = None
        self._parser: Any = None
        self._subscribed: asyncio.Future[None] | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._last_heard = 0.0
        self._in_step = asyncio.Event()
        self._stopping = False

    @property
    def in_step(self) -> bool:
        """Subscribed, and the keys copied since: checks are answered from memory."""
        return self._in_step.is_set()

    async def __call__(self, principal: Principal) -> bool:
        if self.in_step:
            self._read()  # whatever was published before this request was sent
            if self.in_step:
                _FROM_MIRROR.inc()
                return self._revoked(principal)
        return await self._per_request(principal)

    def _revoked(self, principal: Principal) -> bool:
        now = time.time()
        token_until = self._tokens.get(principal.jti)
        if token_until is not None and token_until > now:
            return True
        user = self._users.get(principal.user_id)
        return user is not None and user[1] > now and principal.issued_at_ms < user[0]

    # -- the connection ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Keep the mirror in step while the block runs (a lifecycle of the app)."""
        self._stopping = False
        task = asyncio.create_task(self._run(), name="revocation-mirror")
        try:
            yield
        finally:
            # Told as well as cancelled: redis-py can swallow a cancellation that reaches
            # it mid-command (seen while the keys were being copied).
            self._stopping = True
            self._lost.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._close()

    async def wait_in_step(self) -> None:
        await self._in_step.wait()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._lost = asyncio.Event()
            try:
                await self._connect()
                failures = 0
                await self._keep_alive()
            except (OSError, RedisError, TimeoutError, ValueError, hiredis.ProtocolError) as exc:
                # once per outage, not once per attempt to reconnect
                logger.log(
                    logging.WARNING if failures == 0 else logging.DEBUG,
                    "revocation mirror out of step, checks read Redis meanwhile",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            finally:
                self._close()
            if self._stopping:
                return
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        # a thread resolves the name and picks the address family, as redis-py does
        sock = await asyncio.to_thread(
            socket.create_connection, self._address, timeout=CONNECT_SECONDS
        )
        sock.setblocking(False)
        self._sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._parser = hiredis.Reader(encoding="utf-8")
        self._subscribed = loop.create_future()
        loop.add_reader(sock.fileno(), self._read)
        self._send("SUBSCRIBE", self._channel)
        async with asyncio.timeout(CONNECT_SECONDS):
            await self._subscribed
        # Subscribed first, then copied: a revocation written meanwhile comes both ways.
        await self._copy_keys()
        self._last_heard = time.monotonic()
        self._in_step.set()
        logger.info("revocation mirror in step", extra={"channel": self._channel})

    async def _keep_alive(self) -> None:
        # asyncio.wait's timeout cancels nothing, so the task's own cancellation (the app
        # stopping) always gets through.
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            while not self._stopping:
                done, _ = await asyncio.wait({lost}, timeout=KEEPALIVE_SECONDS)
                if self._stopping:
                    return
                if done:
                    raise ConnectionResetError("Redis closed the mirror's connection")
                if time.monotonic() - self._last_heard > SILENCE_SECONDS:
                    raise TimeoutError(f"Redis answered no ping for {SILENCE_SECONDS:.0f} s")
                self._send("PING")
                self._forget_expired()
        finally:
            lost.cancel()

    async def _copy_keys(self) -> None:
        scan = self.redis.scan_iter
        tokens = [key async for key in scan(match=f"{_TOKENS_PREFIX}*", count=_SCAN_COUNT)]
        users = [key async for key in scan(match=f"{_USERS_PREFIX}*", count=_SCAN_COUNT)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in tokens:
                pipe.pttl(key)
            for key in users:
                pipe.get(key)
                pipe.pttl(key)
            answers = await pipe.execute()
        now = time.time()
        for key, ttl in zip(tokens, answers[: len(tokens)], strict=True):
            if ttl != -2:  # -2: gone meanwhile
                self._take_token(key.removeprefix(_TOKENS_PREFIX), _until(now, ttl))
        rest = answers[len(tokens) :]
        for key, before, ttl in zip(users, rest[::2], rest[1::2], strict=True):
            if before is not None and ttl != -2:
                self._take_user(int(key.removeprefix(_USERS_PREFIX)), int(before), _until(now, ttl))

    def _send(self, *command: str) -> None:
        if self._sock is None:
            return
        data = hiredis.pack_command(command)  # type: ignore[arg-type]  # its stub: one word
        try:
            if self._sock.send(data) != len(data):
                raise BlockingIOError("partial write")
        except OSError:
            self._lose()

    def _read(self) -> None:
        """Take in whatever the socket holds now, without waiting."""
        sock = self._sock
        if sock is None:
            return
        try:
            while True:
                try:
                    data = sock.recv(_RECV_BYTES)
                except BlockingIOError:
                    return
                if not data:
                    raise ConnectionResetError("closed by Redis")
                self._parser.feed(data)
                while (reply := self._parser.gets()) is not False:
                    self._take(reply)
                if len(data) < _RECV_BYTES:
                    return
        except (OSError, hiredis.ProtocolError):
            self._lose()

    def _take(self, reply: Any) -> None:
        self._last_heard = time.monotonic()
        if not isinstance(reply, list) or not reply:
            return
        kind = reply[0]
        if kind == "message" and len(reply) == 3:
            self._take_message(reply[2])
        elif kind == "subscribe" and self._subscribed and not self._subscribed.done():
            self._subscribed.set_result(None)

    def _take_message(self, message: str) -> None:
        parts = message.split()
        try:
            if parts[0] == "t" and len(parts) == 3:
                self._take_token(parts[1], int(parts[2]) / 1000)
                return
            if parts[0] == "u" and len(parts) == 4:
                self._take_user(int(parts[1]), int(parts[2]), int(parts[3]) / 1000)
                return
        except (IndexError, ValueError):
            pass
        logger.warning("revocation message not understood", extra={"message": message[:200]})

    def _take_token(self, jti: str, until: float) -> None:
        self._tokens[jti] = max(until, self._tokens.get(jti, 0.0))

    def _take_user(self, user_id: int, before_ms: int, until: float) -> None:
        # A later revocation of the user's tokens moves the moment on and lives longer.
        known_before, known_until = self._users.get(user_id, (0, 0.0))
        self._users[user_id] = (max(before_ms, known_before), max(until, known_until))

    def _forget_expired(self) -> None:
        now = time.time()
        for jti in [jti for jti, until in self._tokens.items() if until <= now]:
            del self._tokens[jti]
        for user in [user for user, (_, until) in self._users.items() if until <= now]:
            del self._users[user]

    def _lose(self) -> None:
        """The connection broke: checks read Redis until it is rebuilt."""
        self._lost.set()
        if self._subscribed is not None and not self._subscribed.done():
            self._subscribed.set_exception(ConnectionResetError("closed by Redis"))
        self._close()

    def _close(self) -> None:
        self._in_step.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()


def _until(now: float, ttl_ms: int) -> float:
    """When a key with this PTTL expires (-1: it does not)."""
    return math.inf if ttl_ms < 0 else now + ttl_ms / 1000


def access_revocation(redis: Any) -> AccessRevocation:
    """The check a service enforces: a mirror on a single Redis, the keys on a cluster."""
    if isinstance(redis, RedisCluster):
        return RedisAccessRevocation(redis)
    return RevocationMirror(redis)
