"""`santactl doctor`'s sync check (addendum §3): can this machine reach and talk to its sync server?

Santa's probe is one `POST <SyncBaseURL>preflight/santactl-doctor-test` with an empty body, sent with the configured
headers, TLS trust and client certificate (NS `SNTSyncManager -checkSyncServerStatus:`). `diagnose` sends it through
santacore's own `Transport` (so the request is exactly a sync's: User-Agent, SyncExtraHeaders, XSRF handshake,
ServerAuthRootsFile/Data, ClientAuthCertificateFile) and reads from it reachability, the TLS chain, authentication and
XSRF. It then adds santacore's own probes, one request each, for what Santa's empty body cannot tell: which request
compression (deflate, gzip, none) and which body format (JSON, binary protobuf) the server accepts, each with the same
small preflight body (`hostname` = the test machine ID). Every finding is a `Finding` whose text says what to do;
nothing is printed here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from santacore.errors import SyncError, SyncHTTPError
from santacore.sync.retry import RetryPolicy

if TYPE_CHECKING:
    from santacore.config.settings import Config
    from santacore.sync.settings import TransportSettings
    from santacore.sync.transport import Exchange, Transport

DOCTOR_MACHINE_ID = "santactl-doctor-test"
PROBE_JSON = b'{"hostname":"santactl-doctor-test"}'
# The same PreflightRequest in binary protobuf: field 2 (hostname), wire type 2, length 20.
PROBE_PROTOBUF = b"\x12\x14santactl-doctor-test"
ENCODINGS = ("deflate", "gzip", "none")
Status = Literal["ok", "problem", "info"]


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it went, and what to do about it."""

    check: str
    status: Status
    text: str


@dataclass
class DoctorReport:
    server: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "problem" for f in self.findings)

    def add(self, check: str, status: Status, text: str) -> None:
        self.findings.append(Finding(check, status, text))

    def to_json(self) -> dict[str, object]:
        return {"server": self.server, "ok": self.ok, "checks": [dataclasses.asdict(f) for f in self.findings]}


def _one_try(settings: TransportSettings) -> TransportSettings:
    # Two attempts, no sleep: room for the XSRF handshake's retry, and no 4-32 s waits in a diagnosis.
    return dataclasses.replace(settings, retry=RetryPolicy(attempts=2, sleep=lambda _: None, stop_on_4xx=True))


def diagnose(
    config: Config,
    *,
    settings: TransportSettings | None = None,
    machine_id: str | None = None,
    extra_probes: bool = True,
) -> DoctorReport:
    """The doctor's findings for `config` (`settings`: its TransportSettings, changed for tests). `machine_id`: this
    machine's ID, used for one more probe when the server refuses the test ID, to tell a refused credential from a
    refused machine ID. `extra_probes=False` sends Santa's probe alone."""
    from santacore.sync.settings import TransportSettings
    from santacore.sync.transport import Transport

    report = DoctorReport(config.sync_base_url)
    where = f" in {config.source}" if config.source else ""
    if not config.sync_base_url:
        report.add("configuration", "problem", f"SyncBaseURL is not set{where}: set it to the sync server's URL")
        return report
    base = settings or TransportSettings.from_config(config)
    exchanges: list[Exchange] = []
    try:
        transport = Transport(_one_try(base), DOCTOR_MACHINE_ID, trace=exchanges.append)
    except (SyncError, ValueError) as e:  # unreadable CA bundle or client certificate, a bad header value
        report.add("configuration", "problem", f"{e}{where}: fix the setting and run doctor again")
        return report
    with transport:
        url = transport.url("preflight")
        started = time.monotonic()
        status, error = _post(transport, "preflight", b"")
        elapsed = (time.monotonic() - started) * 1000
    https = url.startswith("https:")
    if error is not None:
        _connection_problem(report, url, error, https, base, where)
        return report
    report.add("reachability", "ok", f"{url} answered HTTP {status} in {elapsed:.0f} ms")
    if https:
        trust = _trust(base, config)
        client = f"; client certificate {base.client_cert} presented" if base.client_cert is not None else ""
        report.add("tls", "ok", f"certificate chain verified against {trust}{client}")
    else:
        report.add(
            "tls", "info", "plain HTTP: requests and any secret in SyncExtraHeaders travel unencrypted (use https)"
        )
    _xsrf(report, exchanges, transport)
    _authentication(report, status, base, config, machine_id)
    if extra_probes:
        _compression(report, base, config)
        _formats(report, base)
    return report


def _post(transport: Transport, stage: str, body: bytes) -> tuple[int | None, str | None]:
    """(HTTP status, None) when the server answered, (None, why) when it could not be reached."""
    try:
        transport.post(stage, body)
        return 200, None
    except SyncHTTPError as e:
        return e.status, None
    except SyncError as e:
        return None, str(e)


def _connection_problem(
    report: DoctorReport, url: str, error: str, https: bool, settings: TransportSettings, where: str
) -> None:
    cause = error.split(": ", 1)[1] if error.startswith("preflight: ") else error
    if "TLS certificate verification failed" in cause:
        report.add("reachability", "ok", f"{url}: a TLS server answers")
        anchors = "ServerAuthRootsFile/ServerAuthRootsData" if settings.ca_file or settings.ca_data else "system roots"
        report.add(
            "tls",
            "problem",
            f"{cause} (trusting {anchors}): set ServerAuthRootsFile{where} to the CA that issued the server's "
            "certificate, or fix the server's chain",
        )
    elif "TLS" in cause or "SSL" in cause:
        report.add("reachability", "ok", f"{url}: a TLS server answers")
        need = (
            "set ClientAuthCertificateFile (the server asks for a client certificate)"
            if "certificate required" in cause or "handshake failure" in cause
            else "check that the server speaks TLS on this port and accepts TLS 1.2 or later"
        )
        report.add("tls", "problem", f"{cause}: {need}")
    else:
        hint = "check SyncBaseURL's host and port, the network, and that the server is running"
        if https and "wrong version number" in cause:
            hint = "the server does not speak TLS here: use http:// or the server's TLS port"
        report.add("reachability", "problem", f"{url}: {cause}: {hint}")


def _trust(settings: TransportSettings, config: Config) -> str:
    if settings.ca_file is not None:
        return f"ServerAuthRootsFile {settings.ca_file}"
    if settings.ca_data is not None:
        return "ServerAuthRootsData"
    return "the system's trusted roots"


def _xsrf(report: DoctorReport, exchanges: list[Exchange], transport: Transport) -> None:
    asked = [e for e in exchanges if "/xsrf/" in e.url]
    token = transport.xsrf_token
    if token is not None:
        report.add("xsrf", "ok", f"the server asked for an XSRF token (HTTP 403) and issued one in header {token[0]}")
    elif asked:
        got = asked[-1]
        answer = f"HTTP {got.status}" if got.status is not None else (got.error or "no answer")
        report.add(
            "xsrf",
            "info",
            f"a 403 led to an XSRF request, answered {answer}: the server has no XSRF handshake, so its 403 is "
            "about something else (see authentication)",
        )
    else:
        report.add("xsrf", "info", "not asked for (no HTTP 403): nothing to do")


_AUTH_HINT = (
    "the server refused the credentials: check the secret in SyncExtraHeaders (Zentral answers 403 to a wrong "
    "enrollment secret, 401 to none) and ClientAuthCertificateFile"
)


def _authentication(
    report: DoctorReport, status: int | None, settings: TransportSettings, config: Config, machine_id: str | None
) -> None:
    if status == 200:
        report.add("authentication", "ok", f"preflight for {DOCTOR_MACHINE_ID} accepted (HTTP 200)")
        return
    if status in (401, 403):
        # Was it the credentials or the test machine ID (Zentral takes only UUIDs)? Ask once with this machine's ID.
        if machine_id and machine_id != DOCTOR_MACHINE_ID:
            from santacore.sync.transport import Transport

            with Transport(_one_try(settings), machine_id) as transport:
                own, error = _post(transport, "preflight", b"")
            if error is None and own not in (401, 403):
                report.add(
                    "authentication",
                    "ok",
                    f"HTTP {status} for {DOCTOR_MACHINE_ID} but HTTP {own} for this machine ({machine_id}): the "
                    "credentials are accepted; the server refuses only the test machine ID (Zentral takes UUIDs)",
                )
                return
        report.add("authentication", "problem", f"HTTP {status} for preflight: {_AUTH_HINT}")
        return
    if status == 404:
        report.add(
            "authentication",
            "problem",
            "HTTP 404: no preflight route under SyncBaseURL: check its path (Moroz serves /v1/santa/, Zentral "
            "/public/santa/sync/)",
        )
        return
    assert status is not None
    what = "the server failed" if status >= 500 else "the server refused the request"
    report.add(
        "authentication",
        "info",
        f"HTTP {status} for Santa's empty-body probe ({what}); not an authentication refusal (401/403)",
    )


def _probe_all(
    settings: TransportSettings, variants: list[str], send: Callable[[Transport, str], tuple[int | None, str | None]]
) -> dict[str, str]:
    from santacore.sync.transport import Transport

    outcome: dict[str, str] = {}
    for variant in variants:
        changed = dataclasses.replace(settings, content_encoding=variant) if variant in ENCODINGS else settings
        try:
            with Transport(_one_try(changed), DOCTOR_MACHINE_ID) as transport:
                status, error = send(transport, variant)
        except (SyncError, ValueError) as e:
            status, error = None, str(e)
        outcome[variant] = f"HTTP {status}" if error is None else (error.split(": ", 1)[-1] or error)
    return outcome


def _accepted(outcome: dict[str, str]) -> tuple[list[str], bool]:
    ok = [k for k, v in outcome.items() if v == "HTTP 200"]
    same = len(set(outcome.values())) == 1
    return ok, same


def _compression(report: DoctorReport, settings: TransportSettings, config: Config) -> None:
    outcome = _probe_all(settings, list(ENCODINGS), lambda t, _: _post(t, "preflight", PROBE_JSON))
    ok, same = _accepted(outcome)
    detail = ", ".join(f"{k}: {v}" for k, v in outcome.items())
    configured = str(config.sync_client_content_encoding)
    if same and not ok:
        report.add("compression", "info", f"the server refused the probe itself ({detail}): cannot tell the encodings")
    elif configured in ok:
        report.add(
            "compression", "ok", f"accepts {', '.join(ok)} ({detail}); SyncClientContentEncoding is {configured}"
        )
    else:
        use = f"set SyncClientContentEncoding to {ok[0]}" if ok else "no encoding was accepted"
        report.add("compression", "problem", f"refuses {configured}, the configured encoding ({detail}): {use}")


def _formats(report: DoctorReport, settings: TransportSettings) -> None:
    def send(transport: Transport, variant: str) -> tuple[int | None, str | None]:
        if variant == "json":
            return _post(transport, "preflight", PROBE_JSON)
        return _post_protobuf(transport)

    outcome = _probe_all(settings, ["json", "protobuf"], send)
    ok, same = _accepted(outcome)
    detail = ", ".join(f"{k}: {v}" for k, v in outcome.items())
    if same and not ok:
        report.add("format", "info", f"the server refused the probe itself ({detail}): cannot tell the formats")
    elif ok == ["json"]:
        report.add("format", "ok", f"accepts JSON, not binary protobuf ({detail}): leave SyncEnableProtoTransfer off")
    elif ok == ["protobuf"]:
        report.add("format", "ok", f"accepts binary protobuf, not JSON ({detail}): turn SyncEnableProtoTransfer on")
    else:
        report.add("format", "ok", f"accepts JSON and binary protobuf ({detail}): SyncEnableProtoTransfer may be on")


def _post_protobuf(transport: Transport) -> tuple[int | None, str | None]:
    """The protobuf probe: one request with `Content-Type: application/x-protobuf` and the configured compression,
    through the transport's own exchange (headers, TLS, deadline), without its retries."""
    from santacore.sync.failures import AttemptFailed
    from santacore.sync.request import compress_body

    content, encoding = compress_body(PROBE_PROTOBUF, transport.content_encoding)
    status: int | None = None
    for _ in range(2):  # a 403 gets the XSRF handshake and one more try, as `Transport.post` would
        token = transport._xsrf.header
        headers = [
            (name, b"application/x-protobuf" if name.lower() == b"content-type" else value)
            for name, value in transport._headers(content_type=True, encoding=encoding, token=token)
        ]
        try:
            reply = transport._perform(transport.url("preflight"), content, headers, transport.timeout, with_body=True)
        except AttemptFailed as e:
            return None, e.message
        status = reply.status
        if status != 403 or not transport._xsrf.fetch(token, transport._xsrf_exchange):
            break
    return status, None
