"""Where the server listens: Daphne's endpoint strings and flags turned into sockets.

Daphne (Twisted) endpoint strings are accepted as they are written in deployments:

    tcp:port=8000:interface=127.0.0.1     tcp:8000     tcp:port=8000:interface=\\:\\:1
    unix:/run/narrows.sock                unix:path=/run/narrows.sock:mode=660
    fd:fileno=0                           fd:0
    ssl:port=8443:privateKey=key.pem:certKey=cert.pem[:interface=...]

``-b/-p`` add a TCP endpoint, ``-u`` a unix socket, ``--fd`` an inherited listening
socket; any number at once. With none at all the server listens on 127.0.0.1:8000, like
Daphne. Sockets passed by systemd (``LISTEN_FDS``/``LISTEN_PID``) are used as well.
A unix socket path left behind by a dead server is replaced; one a live server still
answers on is refused.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
from dataclasses import dataclass

from narrows.server.config import DEFAULT_HOST, DEFAULT_PORT, Config
from narrows.server.tls import create_ssl_context

__all__ = [
    "BoundSocket",
    "Endpoint",
    "EndpointError",
    "bind_all",
    "config_endpoints",
    "parse_endpoint",
    "ssl_context_for",
]

SD_LISTEN_FDS_START = 3


class EndpointError(ValueError):
    """An endpoint cannot be parsed or bound; the message names it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: str  # "tcp" | "unix" | "fd" | "ssl"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    path: str = ""
    fd: int = -1
    mode: int | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd:fileno={self.fd}"
        return f"{self.kind}:port={self.port}:interface={self.host}"


@dataclass(slots=True)
class BoundSocket:
    sock: socket.socket
    endpoint: Endpoint
    ssl_context: ssl.SSLContext | None = None
    #: unix socket file this process created (removed again on shutdown)
    created_path: str | None = None

    @property
    def url(self) -> str:
        """What "Listening on ..." prints: http://host:port or unix:/path."""
        family = self.sock.family
        if family == socket.AF_UNIX:
            name = self.sock.getsockname()
            return f"unix:{name if isinstance(name, str) else name.decode()}"
        host, port = self.sock.getsockname()[:2]
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}"


def _split(description: str) -> list[str]:
    """Split on ':' honouring Twisted's backslash escapes (``\\:`` is a literal colon)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_endpoint(description: str) -> Endpoint:
    kind, *fields = _split(description)
    kind = kind.strip().lower()
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if sep and key and key.replace("_", "").isalnum():
            kwargs[key] = value
        else:
            args.append(item)
    try:
        if kind in ("tcp", "tcp6", "ssl"):
            return _tcp(kind, args, kwargs)
        if kind == "unix":
            path = kwargs.get("address") or kwargs.get("path") or (args[0] if args else "")
            mode = int(kwargs["mode"], 8) if "mode" in kwargs else None
            if not path:
                raise EndpointError(f'Expected a socket path in "{description}"')
            return Endpoint("unix", path=path, mode=mode)
        if kind == "fd":
            return Endpoint("fd", fd=int(kwargs.get("fileno") or args[0]))
    except (IndexError, ValueError) as exc:
        if isinstance(exc, EndpointError):
            raise
        raise EndpointError(f'Invalid endpoint "{description}": {exc}') from None
    raise EndpointError(f'Expected an endpoint of type tcp, unix, fd or ssl, got "{description}"')


def _tcp(kind: str, args: list[str], kwargs: dict[str, str]) -> Endpoint:
    port = int(kwargs.get("port") or args[0])
    host = kwargs.get("interface") or (args[1] if len(args) > 1 else "")
    if not host:
        host = "::" if kind == "tcp6" else "0.0.0.0"
    if kind != "ssl":
        return Endpoint("tcp", host=host, port=port)
    certfile = kwargs.get("certKey") or kwargs.get("certfile")
    keyfile = kwargs.get("privateKey") or kwargs.get("keyfile")
    if not certfile and not keyfile:
        raise EndpointError("ssl endpoint needs privateKey= (and certKey= if separate)")
    return Endpoint("ssl", host=host, port=port, certfile=certfile or keyfile, keyfile=keyfile)


def config_endpoints(config: Config, environ: dict[str, str] | None = None) -> list[Endpoint]:
    """Every endpoint the configuration asks for, in flag order (default 127.0.0.1:8000)."""
    endpoints: list[Endpoint] = []
    if config.host is not None or config.port is not None:
        endpoints.append(
            Endpoint(
                "ssl" if config.ssl_certfile else "tcp",
                host=config.host or DEFAULT_HOST,
                port=DEFAULT_PORT if config.port is None else config.port,
                certfile=config.ssl_certfile,
                keyfile=config.ssl_keyfile,
            )
        )
    if config.unix_socket:
        endpoints.append(Endpoint("unix", path=config.unix_socket, mode=config.uds_permissions))
    endpoints.extend(Endpoint("fd", fd=fd) for fd in config.file_descriptors)
    endpoints.extend(parse_endpoint(text) for text in config.endpoints)
    endpoints.extend(systemd_endpoints(os.environ if environ is None else environ))
    if not endpoints:
        kind = "ssl" if config.ssl_certfile else "tcp"
        endpoints.append(Endpoint(kind, certfile=config.ssl_certfile, keyfile=config.ssl_keyfile))
    return endpoints


def systemd_endpoints(environ: dict[str, str] | os._Environ[str]) -> list[Endpoint]:
    """Sockets passed by systemd socket activation, when they are meant for this process."""
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
        pid = int(environ.get("LISTEN_PID", "0"))
    except ValueError:
        return []
    if count <= 0 or pid != os.getpid():
        return []
    return [Endpoint("fd", fd=SD_LISTEN_FDS_START + i) for i in range(count)]


def bind_all(config: Config, endpoints: list[Endpoint]) -> list[BoundSocket]:
    bound: list[BoundSocket] = []
    try:
        for endpoint in endpoints:
            bound.append(bind(config, endpoint))
    except BaseException:
        for item in bound:
            item.sock.close()
        raise
    return bound


def bind(config: Config, endpoint: Endpoint) -> BoundSocket:
    if endpoint.kind == "unix":
        sock, created = _bind_unix(config, endpoint)
        return BoundSocket(sock, endpoint, created_path=created)
    if endpoint.kind == "fd":
        return BoundSocket(_adopt_fd(config, endpoint.fd), endpoint)
    context = ssl_context_for(config, endpoint)
    return BoundSocket(_bind_tcp(config, endpoint.host, endpoint.port), endpoint, context)


def ssl_context_for(config: Config, endpoint: Endpoint) -> ssl.SSLContext | None:
    """The TLS context an endpoint serves with, or None for plain TCP/unix/fd endpoints.

    Also used by ``--workers`` processes, which inherit the socket but not the context.
    """
    certfile = endpoint.certfile or (config.ssl_certfile if endpoint.kind == "ssl" else None)
    if not certfile:
        return None
    return create_ssl_context(
        certfile,
        endpoint.keyfile or config.ssl_keyfile,
        config.ssl_keyfile_password,
        config.ssl_ca_certs,
    )


def _bind_tcp(config: Config, host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        raise EndpointError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _bind_unix(config: Config, endpoint: Endpoint) -> tuple[socket.socket, str]:
    path = endpoint.path
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        mode = endpoint.mode if endpoint.mode is not None else config.uds_permissions
        if mode is not None:
            os.chmod(path, mode)
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        raise EndpointError(f"Cannot listen on unix:{path}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock, path


def _remove_stale_socket(path: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise EndpointError(f"Cannot listen on unix:{path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody answers: left behind by a server that is gone
        return
    finally:
        probe.close()
    raise EndpointError(f"Cannot listen on unix:{path}: another server is listening there")


def _adopt_fd(config: Config, fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise EndpointError(f"--fd {fd} is not a usable socket: {exc.strerror or exc}") from exc
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise EndpointError(f"--fd {fd} is not a stream socket (got {sock.type!r})")
    try:
        sock.listen(config.backlog)
    except OSError as exc:
        sock.detach()
        raise EndpointError(f"--fd {fd} cannot listen: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock
