"""The exporter's HTTP front door: bounded, timed out, and TLS and basic auth by web config.

One asyncio loop on one thread holds every connection, so idle or slow
clients cost a few kilobytes each and never a thread; only a complete request
for /metrics reaches the small worker pool that renders a scrape (and checks
bcrypt passwords, which take tens of milliseconds by design).

TLS and basic authentication are configured with the web-config file of the
Prometheus exporter toolkit that node_exporter reads (``--web.config.file``):
``tls_server_config`` (``cert_file``, ``key_file``, ``client_auth_type``,
``client_ca_file``, ``min_version``, ``max_version``), ``basic_auth_users``
(user: bcrypt hash) and ``http_server_config.headers``.  Relative paths are
taken from the file's own folder, as the toolkit does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import gzip
import hashlib
import ipaddress
import os
import re
import resource
import socket
import ssl
import threading
import time
from asyncio import selector_events, sslproto
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from ._common import endpoint
from ._exceptions import SockdiagError

# Limits of the door.  A scraper sends one short request every few seconds;
# anything slower or bigger is a client to drop, not to wait for.
LISTEN_BACKLOG = 1024
MAX_CONNECTIONS = 4096
REQUEST_TIMEOUT_S = 10.0  # from the first byte of a request to its blank line
IDLE_TIMEOUT_S = 60.0  # a kept-alive connection with no request
TLS_HANDSHAKE_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 30.0
MAX_HEADER_BYTES = 16 * 1024
WORKERS = 4
_AUTH_CACHE_ENTRIES = 64
# bcrypt checks run on threads of their own, so that a flood of wrong
# passwords never holds the scrape workers; past this many waiting, a request
# with unknown credentials is answered 503 at once.
PASSWORD_CHECKERS = 2
PASSWORD_CHECKS_WAITING = 64

METRICS_PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version"}
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable", 505: "HTTP Version Not Supported"}


@dataclass(frozen=True)
class WebConfig:
    """What a web-config file asks for: TLS, basic-auth users, extra headers."""

    tls: Optional[ssl.SSLContext] = None
    users: Mapping[str, bytes] = field(default_factory=dict)  # user name -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    #: What the file asks for that still serves, but not as meant (one line each).
    warnings: tuple[str, ...] = ()


# A TLS record holds at most 16 KiB: asyncio's TLS protocol reads into a
# buffer of its max_size, 256 KiB by default, zero-filled for every
# connection (a thousand idle ones took 280 MB, which glibc kept after they closed).
_TLS_READ_BYTES = 16 * 1024


class _TlsProtocol(sslproto.SSLProtocol):
    max_size = _TLS_READ_BYTES


class _DoorLoop(asyncio.SelectorEventLoop):
    """The door's event loop: asyncio's, with TLS connections reading through _TlsProtocol."""

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *, server_side=False,
                            server_hostname=None, extra=None, server=None, **timeouts):
        tls = _TlsProtocol(self, protocol, sslcontext, waiter, server_side, server_hostname, **timeouts)
        selector_events._SelectorSocketTransport(self, rawsock, tls, extra=extra, server=server)
        return tls._app_transport


# Closed connections after which the door gives freed memory back to the system.
_TRIM_AFTER_CLOSED = 64


def _give_back_freed_memory() -> None:
    """Free what closed connections left: asyncio's transports and TLS
    objects hold one another in cycles, which wait for the collector; then
    glibc's malloc_trim gives the freed pages of every arena back to the
    system (glibc would keep them otherwise)."""
    import ctypes
    import gc

    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _config_error(path: str, message: str) -> SockdiagError:
    return SockdiagError(f"web config {path}: {message}")


def load_web_config(path: str) -> WebConfig:
    """Read an exporter-toolkit web-config file; SockdiagError naming what is wrong."""
    try:
        import yaml
    except ImportError as err:
        raise SockdiagError("--web-config needs PyYAML: pip install 'sockdiag[export]'") from err
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except OSError as err:
        raise _config_error(path, err.strerror or str(err)) from err
    except yaml.YAMLError as err:
        raise _config_error(path, f"not valid YAML ({str(err).splitlines()[0]})") from err
    document = document or {}
    if not isinstance(document, dict):
        raise _config_error(path, "expected a mapping at the top level")
    unknown = set(document) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise _config_error(path, f"unknown or unsupported key {sorted(unknown)[0]!r}")
    base = os.path.dirname(os.path.abspath(path))
    tls = _tls_context(path, base, document.get("tls_server_config"))
    users = _users(path, document.get("basic_auth_users"))
    headers = _headers(path, document.get("http_server_config"))
    warnings = []
    if tls is not None:
        warnings += _certificate_warnings(os.path.join(base, str(document["tls_server_config"]["cert_file"])))
    if "basic_auth_users" in document and not users:
        warnings.append("basic_auth_users is empty: no one needs a password")
    if tls is None and not users:
        warnings.append("turns on neither TLS nor basic auth: plain HTTP, open to anyone who can connect")
    return WebConfig(tls=tls, users=users, headers=headers,
                     warnings=tuple(f"web config {path}: {warning}" for warning in warnings))


def _certificate_warnings(cert_file: str) -> list[str]:
    """A line for a certificate out of its validity period (clients refuse it)."""
    try:
        decoded = ssl._ssl._test_decode_cert(cert_file)  # the one reader of a PEM's dates in the stdlib
        not_before = ssl.cert_time_to_seconds(decoded["notBefore"])
        not_after = ssl.cert_time_to_seconds(decoded["notAfter"])
    except (AttributeError, KeyError, ValueError, OSError, ssl.SSLError):
        return []
    now = time.time()
    if now > not_after:
        return [f"the certificate {cert_file} expired on {decoded['notAfter']}: clients will refuse it"]
    if now < not_before:
        return [f"the certificate {cert_file} is valid only from {decoded['notBefore']}: clients will refuse it"]
    return []


def _tls_context(path: str, base: str, section) -> Optional[ssl.SSLContext]:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise _config_error(path, "tls_server_config must be a mapping")
    unknown = set(section) - _TLS_KEYS
    if unknown:
        raise _config_error(path, f"tls_server_config.{sorted(unknown)[0]} is not supported")
    if not section.get("cert_file") or not section.get("key_file"):
        raise _config_error(path, "tls_server_config needs cert_file and key_file")

    def resolve(name: str) -> str:
        return os.path.join(base, str(section[name]))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = _TLS_VERSIONS[section.get("min_version", "TLS12")]
        if "max_version" in section:
            context.maximum_version = _TLS_VERSIONS[section["max_version"]]
    except KeyError as err:
        raise _config_error(path, f"unknown TLS version {err.args[0]!r} "
                                  f"(known: {', '.join(_TLS_VERSIONS)})") from None
    try:
        context.load_cert_chain(resolve("cert_file"), resolve("key_file"))
    except (OSError, ssl.SSLError) as err:
        raise _config_error(path, f"cannot load cert_file/key_file: "
                                  f"{getattr(err, 'strerror', None) or err}") from err
    auth = section.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise _config_error(path, f"client_auth_type {auth!r} is not supported "
                                  f"(supported: {', '.join(_CLIENT_AUTH)})")
    context.verify_mode = _CLIENT_AUTH[auth]
    if auth != "NoClientCert":
        if not section.get("client_ca_file"):
            raise _config_error(path, f"client_auth_type {auth} needs client_ca_file")
        try:
            context.load_verify_locations(resolve("client_ca_file"))
        except (OSError, ssl.SSLError) as err:
            raise _config_error(path, f"cannot load client_ca_file: "
                                      f"{getattr(err, 'strerror', None) or err}") from err
    return context


def _users(path: str, section) -> dict[str, bytes]:
    if not section:
        return {}
    if not isinstance(section, dict):
        raise _config_error(path, "basic_auth_users must be a mapping of user: bcrypt hash")
    try:
        import bcrypt  # checked here so that a scrape never finds it missing
    except ImportError as err:
        raise SockdiagError("basic_auth_users needs bcrypt: pip install 'sockdiag[export]'") from err
    users = {}
    for user, hashed in section.items():
        match = _BCRYPT_HASH.fullmatch(hashed) if isinstance(hashed, str) else None
        if match is None or not 4 <= int(match.group(1)) <= 31 or not _bcrypt_reads(bcrypt, hashed):
            raise _config_error(path, f"basic_auth_users.{user}: not a bcrypt hash "
                                      "($2y$, a cost from 04 to 31, $, then 53 characters of ./A-Za-z0-9)")
        users[str(user)] = hashed.encode()
    return users


# $2a$, $2b$ or $2y$, the cost, then 22 characters of salt and 31 of hash in bcrypt's base 64.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _bcrypt_reads(bcrypt, hashed: str) -> bool:
    """Whether bcrypt takes the hash's salt, tried at the lowest cost (a millisecond, whatever its own)."""
    try:
        bcrypt.checkpw(b"", f"{hashed[:4]}04{hashed[6:]}".encode())
    except ValueError:
        return False
    return True


def _headers(path: str, section) -> dict[str, str]:
    if not section:
        return {}
    if not isinstance(section, dict) or set(section) - {"headers", "http2"}:
        raise _config_error(path, "http_server_config supports headers (and ignores http2)")
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        raise _config_error(path, "http_server_config.headers must be a mapping")
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n"):
            raise _config_error(path, f"http_server_config.headers.{name} holds a line break")
    return {str(k): str(v) for k, v in headers.items()}


def is_loopback(host: str) -> bool:
    """True when every address host resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


class _Authenticator:
    """Basic-auth check against bcrypt hashes, with a small cache of successes."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        # Compared against for unknown users, so that timing does not tell
        # which user names exist.
        import bcrypt

        self._bcrypt = bcrypt
        self._decoy = bcrypt.hashpw(b"sockdiag", bcrypt.gensalt(rounds=10))
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def remembered(self, authorization: Optional[str]) -> bool:
        """Whether these credentials were verified lately: a hash, no bcrypt (on the event loop)."""
        credentials = self._credentials(authorization)
        if credentials is None or credentials[0] not in self.users:
            return False
        key = self._key(*credentials)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
        return False

    def _credentials(self, authorization: Optional[str]) -> Optional[tuple[str, str]]:
        if not authorization or not authorization[:6].lower() == "basic ":
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:].strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def _key(self, user: str, password: str) -> bytes:
        return hashlib.sha256(b"%s\0%s\0%s" % (user.encode(), password.encode(),
                                                 self.users.get(user, b""))).digest()

    def check(self, authorization: Optional[str]) -> bool:
        """Whether the credentials match a user's bcrypt hash (tens of milliseconds: on a checker thread)."""
        credentials = self._credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self.users.get(user)
        key = self._key(user, password)
        ok = self._bcrypt.checkpw(password.encode(), hashed or self._decoy) and hashed is not None
        if ok:
            with self._lock:
                self._cache[key] = None
                if len(self._cache) > _AUTH_CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return ok


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]


async def _read_request(reader: asyncio.StreamReader, first_timeout_s: float,
                        request_timeout_s: float) -> Optional[_Request]:
    """The next request's line and headers; None when the client closed or idled out."""
    try:
        first = await asyncio.wait_for(reader.readuntil(b"\n"), first_timeout_s)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        return None
    except asyncio.LimitOverrunError as err:
        raise _BadRequest(431, "request line too long") from err
    lines = [first]
    size = len(first)

    async def rest() -> None:
        nonlocal size
        while lines[-1] not in (b"\r\n", b"\n"):
            line = await reader.readuntil(b"\n")
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise _BadRequest(431, "request headers too large")
            lines.append(line)

    parts = first.decode("latin-1").strip().split()
    if len(parts) == 2 and parts[0] == "GET":
        raise _BadRequest(400, "HTTP/0.9 is not served")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest(400, "malformed request line")
    if parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise _BadRequest(505, f"{parts[2]} is not served")
    try:
        await asyncio.wait_for(rest(), request_timeout_s)
    except asyncio.TimeoutError as err:
        raise _BadRequest(408, "request headers not received in time") from err
    except asyncio.LimitOverrunError as err:
        raise _BadRequest(431, "request header line too long") from err
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        return None
    headers = {}
    for line in lines[1:-1]:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, "malformed header line")
        headers[name.lower()] = value.strip()
    return _Request(parts[0], parts[1], parts[2], headers)


class MetricsServer:
    """Serves render() on /metrics from a thread of its own; see the module's docstring.

    ``server_address``/``server_port`` give the bound address (port 0 takes a
    free one); ``shutdown()`` then ``server_close()`` stop it.
    """

    def __init__(self, render: Callable[[], bytes], host: str, port: int,
                 web: Optional[WebConfig] = None, *, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self._render = render
        self._request_timeout_s = request_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._web = web or WebConfig()
        self._auth = _Authenticator(self._web.users) if self._web.users else None
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "sockdiag-scrape")
        self._password_pool = concurrent.futures.ThreadPoolExecutor(PASSWORD_CHECKERS, "sockdiag-password")
        self._password_checks = 0  # waiting or running
        self._writers: set[asyncio.StreamWriter] = set()  # the open connections
        self._most_writers = 0  # of the open connections, the most since memory was last given back
        self._trim_scheduled = False
        self._loop = _DoorLoop()
        self._stopped = threading.Event()
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._serve_connection, host, port, backlog=LISTEN_BACKLOG,
                ssl=self._web.tls, limit=MAX_HEADER_BYTES,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self._web.tls else None,
                reuse_address=True))
        except OSError:
            self._loop.close()
            self._pool.shutdown()
            self._password_pool.shutdown()
            raise
        sockname = self._server.sockets[0].getsockname()
        self.server_address = sockname
        self.server_port = sockname[1]
        self._serving = self._loop.create_task(self._server.serve_forever())
        self.thread = threading.Thread(target=self._run, name="sockdiag-http", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serving)
        except asyncio.CancelledError:
            pass
        finally:
            # Connections were aborted: let their handlers see it and end.
            pending = asyncio.all_tasks(self._loop)
            if pending:
                self._loop.run_until_complete(asyncio.wait(pending, timeout=2))
            self._stopped.set()

    def _stop(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._serving.cancel()

    def shutdown(self) -> None:
        """Stop accepting and serving; returns when the loop has stopped."""
        if not self._stopped.is_set():
            self._loop.call_soon_threadsafe(self._stop)
            self._stopped.wait(10)

    def server_close(self) -> None:
        """Release the loop and the worker threads (after shutdown())."""
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._password_pool.shutdown(wait=False, cancel_futures=True)

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._most_writers = max(self._most_writers, len(self._writers))
        try:
            if len(self._writers) > MAX_CONNECTIONS:
                await self._respond(writer, 503, b"too many connections\n", close=True)
                return
            first_timeout = self._request_timeout_s
            while True:
                try:
                    request = await _read_request(reader, first_timeout, self._request_timeout_s)
                except _BadRequest as err:
                    await self._respond(writer, err.status, f"{err}\n".encode(), close=True)
                    return
                if request is None:
                    return
                close = (request.headers.get("connection", "").lower() == "close"
                         or (request.version == "HTTP/1.0"
                             and request.headers.get("connection", "").lower() != "keep-alive"))
                if not await self._answer(writer, request, close):
                    return
                if close:
                    return
                first_timeout = self._idle_timeout_s
        except (ConnectionError, ssl.SSLError, asyncio.TimeoutError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            if self._most_writers - len(self._writers) >= _TRIM_AFTER_CLOSED and not self._trim_scheduled:
                self._trim_scheduled = True  # once the closed connections' transports are gone
                asyncio.get_running_loop().call_later(1.0, self._give_back_memory)

    def _give_back_memory(self) -> None:
        self._trim_scheduled = False
        self._most_writers = len(self._writers)
        _give_back_freed_memory()

    async def _answer(self, writer: asyncio.StreamWriter, request: _Request, close: bool) -> bool:
        """Answer one request; False when the connection must end."""
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            await self._respond(writer, 400, b"a scrape has no body\n", close=True)
            return False
        loop = asyncio.get_running_loop()
        if self._auth is not None:
            authorization = request.headers.get("authorization")
            allowed = self._auth.remembered(authorization)
            if not allowed:
                if self._password_checks >= PASSWORD_CHECKS_WAITING:
                    await self._respond(writer, 503, b"too many password checks waiting\n", close=True,
                                        extra={"Retry-After": "1"})
                    return False
                self._password_checks += 1
                try:
                    allowed = await loop.run_in_executor(self._password_pool, self._auth.check, authorization)
                finally:
                    self._password_checks -= 1
            if not allowed:
                await self._respond(writer, 401, b"Unauthorized\n", close=close,
                                    extra={"WWW-Authenticate": 'Basic realm="sockdiag"'})
                return True
        path = request.target.split("?", 1)[0]
        if request.method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"only GET and HEAD\n", close=close,
                                extra={"Allow": "GET, HEAD"})
            return True
        if path == "/":
            body = (b"<html><head><title>sockdiag exporter</title></head><body>"
                    b'<h1>sockdiag exporter</h1><p><a href="/metrics">Metrics</a></p>'
                    b"</body></html>\n")
            await self._respond(writer, 200, body, close=close, head=request.method == "HEAD",
                                content_type="text/html; charset=utf-8")
            return True
        if path != METRICS_PATH:
            await self._respond(writer, 404, b"not found: try /metrics\n", close=close)
            return True
        gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        try:
            body = await loop.run_in_executor(self._pool, self._scrape, gzipped)
        except Exception as err:  # an error of one scrape answers 500; the door stays open
            await self._respond(writer, 500, f"scrape failed: {err}\n".encode(), close=close)
            return True
        extra = {"Content-Encoding": "gzip"} if gzipped else {}
        await self._respond(writer, 200, body, close=close, head=request.method == "HEAD",
                            extra=extra)
        return True

    def _scrape(self, gzipped: bool) -> bytes:
        body = self._render()
        return gzip.compress(body, compresslevel=1) if gzipped else body

    async def _respond(self, writer: asyncio.StreamWriter, status: int, body: bytes, *,
                       close: bool, head: bool = False, content_type: str = CONTENT_TYPE,
                       extra: Optional[Mapping[str, str]] = None) -> None:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
                   **self._web.headers, **(extra or {})}
        if close:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head_bytes if head else head_bytes + body)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (RFC 9110, 12.5.3): named or
    through "*", with a q-value above 0 ("gzip;q=0" refuses it; a malformed q too)."""
    weights = {}
    for part in accept_encoding.split(","):
        coding, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                weight = float(value) if re.fullmatch(r"0(\.\d{0,3})?|1(\.0{0,3})?", value) else 0.0
        if coding:
            weights[coding.lower()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def raise_fd_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as Go servers do at start.

    Every open connection is an fd; a scraper must not be refused because
    idle clients took the default 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def serve(collector, host: str, port: int, web: Optional[WebConfig] = None):
    """Serve /metrics of collector (sockdiag.export.Collector) on host:port from a
    background thread; (server, thread).

    web: TLS, basic-auth users and headers from a web-config file
    (load_web_config).  Port 0 takes any free port (see
    ``server.server_port``).  SockdiagError when the address cannot be
    resolved or is in use.
    """
    from .export import registry
    from .exposition import text_format

    raise_fd_limit()
    reg = registry(collector)
    try:
        server = MetricsServer(lambda: text_format(reg.collect()), host, port, web)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise SockdiagError(f"cannot listen on {endpoint(host, port)}: {reason}") from err
    return server, server.thread
