"""One Redfish session to one BMC, over sushy, with the limits a fleet needs.

sushy does the Redfish work; this module adds what a fleet of BMCs needs
around it: a per-request timeout clamped to a whole-operation deadline (so a
BMC that accepts and never answers cannot hold a worker past its node's
deadline), retries of transient failures (sushy retries resets, timeouts and
5xx on GETs; :func:`with_busy_retry` retries actions the BMC refused as 503
busy), a certificate pin checked by urllib3, and classification of every
failure into a :class:`~provision.bmc.model.Status` with a message from which
the password has been removed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
import sushy
from requests.adapters import HTTPAdapter
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_exc

from provision.bmc.model import BmcOptions, BmcTarget, Status
from provision.errors import InputError

# sushy logs transient errors at WARNING; the CLI reports outcomes itself, and a
# library must not print to stderr behind the user's back.
logging.getLogger("sushy").addHandler(logging.NullHandler())
logging.getLogger("sushy").propagate = False

T = TypeVar("T")

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class DeadlineExceeded(Exception):
    """The node's whole-operation deadline passed; deliberately not a requests error.

    sushy retries requests' errors; this one must go straight through it.
    """


class BmcFailure(Exception):
    """A classified failure of one node's operation (never reaches the user as a traceback)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normalize_fingerprint(value: str) -> str:
    """``AB:CD:...`` or ``abcd...`` -> 64 lower-case hex digits; InputError otherwise."""
    fp = value.replace(":", "").strip().lower()
    if not _FINGERPRINT.match(fp):
        raise InputError(
            f"bmc.pinned_sha256: {value!r} is not a SHA-256 fingerprint (64 hex digits)",
            hint="openssl x509 -in bmc.crt -noout -fingerprint -sha256")
    return fp


class _BmcAdapter(HTTPAdapter):
    """Clamps every request's timeout to the node deadline; optionally pins the certificate."""

    def __init__(self, deadline: float, fingerprint: str | None) -> None:
        self._deadline = deadline
        self._fingerprint = fingerprint
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._fingerprint:
            kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("node deadline passed")
        if isinstance(timeout, tuple):
            timeout = (min(timeout[0], left), min(timeout[1], left))
        else:
            timeout = min(timeout or left, left)
        return super().send(request, stream=stream, timeout=timeout, verify=verify,
                            cert=cert, proxies=proxies)


class _Connector(sushy_connector.Connector):
    def __init__(self, url: str, adapter: HTTPAdapter, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        # the only way to give sushy's requests session our adapter
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        # sushy asks for a new connection per request (some BMCs choke on long-lived
        # ones); ours live for one node's operation and are closed after it, and a
        # TLS handshake per request would cost more than the requests themselves.
        self._session.headers.pop("Connection", None)


def base_url(target: BmcTarget, opts: BmcOptions) -> str:
    return f"{opts.scheme}://{target.address}"


def _verify_arg(opts: BmcOptions) -> bool | str:
    tls = opts.tls
    if tls.insecure or tls.pinned_sha256:
        return False           # a pin replaces CA validation; urllib3 still checks the pin
    if tls.ca_bundle:
        return tls.ca_bundle
    return tls.verify


@contextlib.contextmanager
def session(target: BmcTarget, opts: BmcOptions, deadline: float) -> Iterator[sushy.Sushy]:
    """Connect and authenticate (HTTP basic: no BMC session slots are held or leaked)."""
    t = opts.timeouts
    fp = normalize_fingerprint(opts.tls.pinned_sha256) if opts.tls.pinned_sha256 else None
    url = base_url(target, opts)
    conn = _Connector(
        url, _BmcAdapter(deadline, fp), verify=_verify_arg(opts),
        server_side_retries=max(t.retries, 1), server_side_retries_delay=t.retry_delay_s,
        default_request_timeout=t.read_s, connect_timeout=t.connect_s)
    auth = sushy_auth.BasicAuth(username=opts.credentials.username,
                                password=opts.credentials.password)
    try:
        try:
            root = sushy.Sushy(url, auth=auth, connector=conn)
        except Exception as exc:
            raise classify(exc, opts) from None
        yield root
    finally:
        conn.close()


def with_busy_retry(action: Callable[[], T], opts: BmcOptions, deadline: float) -> T:
    """Run an action (POST/PATCH), retrying while the BMC answers 503 busy.

    sushy retries only GETs on server errors: a POST that failed with a 500
    may have half-happened, but 503 means the BMC did not take the request.
    """
    attempt = 0
    while True:
        try:
            return action()
        except sushy_exc.ServerSideError as exc:
            attempt += 1
            busy = getattr(exc, "status_code", None) == 503
            if not busy or attempt >= max(opts.timeouts.retries, 1) \
                    or time.monotonic() + opts.timeouts.retry_delay_s >= deadline:
                raise
            time.sleep(opts.timeouts.retry_delay_s)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def classify(exc: BaseException, opts: BmcOptions) -> BmcFailure:
    """Map an exception from sushy/requests to a node status and a password-free message."""
    secrets = (opts.credentials.password,)
    if isinstance(exc, BmcFailure):
        return BmcFailure(exc.status, redact(exc.message, secrets))
    if isinstance(exc, DeadlineExceeded):
        return BmcFailure(Status.UNREACHABLE, f"no answer within the node deadline "
                          f"({opts.timeouts.node_deadline_s:g} s)")
    if isinstance(exc, sushy_exc.AccessError):
        code = getattr(exc, "status_code", None)
        return BmcFailure(Status.AUTH_FAILED,
                          f"BMC rejected the credentials of user "
                          f"{opts.credentials.username!r} (HTTP {code})")
    if isinstance(exc, sushy_exc.ConnectionError):
        text = str(exc)
        inner = exc.__context__ or exc.__cause__
        if _is_tls_error(text, inner):
            reason = ("certificate fingerprint does not match bmc.pinned_sha256"
                      if "fingerprint" in text.lower() else "certificate not trusted")
            return BmcFailure(Status.TLS_FAILED, f"TLS: {reason}")
        if "DeadlineExceeded" in text or isinstance(inner, DeadlineExceeded):
            return BmcFailure(Status.UNREACHABLE, "no answer within the node deadline")
        return BmcFailure(Status.UNREACHABLE, redact(_reason(text), secrets))
    if isinstance(exc, sushy_exc.HTTPError):
        code = getattr(exc, "status_code", None)
        status = Status.UNREACHABLE if code in (502, 503, 504) else Status.ERROR
        detail = getattr(exc, "detail", None) or str(exc)
        return BmcFailure(status, redact(_first_line(f"HTTP {code}: {detail}"), secrets))
    if isinstance(exc, sushy_exc.SushyError):
        return BmcFailure(Status.ERROR, redact(_first_line(str(exc)), secrets))
    if isinstance(exc, requests.RequestException):
        return BmcFailure(Status.UNREACHABLE, redact(_reason(str(exc)), secrets))
    return BmcFailure(Status.ERROR, redact(_first_line(f"{type(exc).__name__}: {exc}"), secrets))


def _is_tls_error(text: str, inner: BaseException | None) -> bool:
    if isinstance(inner, requests.exceptions.SSLError):
        return True
    low = text.lower()
    return "ssl" in low and ("certificate" in low or "fingerprint" in low
                             or "handshake" in low)


_REASONS = (
    ("connection refused", "connection refused"),
    ("read timed out", "read timed out"),
    ("connect timeout", "connect timed out"),
    ("timed out", "timed out"),
    ("connection reset", "connection reset by peer"),
    ("remotedisconnected", "connection closed without an answer"),
    ("connection aborted", "connection closed without an answer"),
    ("name or service not known", "host name does not resolve"),
    ("no route to host", "no route to host"),
)


def _reason(text: str) -> str:
    low = text.lower()
    for needle, reason in _REASONS:
        if needle in low:
            return reason
    return _first_line(text)
