"""The server's ``ssl.SSLContext`` from ``--ssl-certfile/--ssl-keyfile`` (and Daphne's
``ssl:`` endpoint ``privateKey``/``certKey``)."""

from __future__ import annotations

import ssl

__all__ = ["TLSConfigError", "create_ssl_context"]


class TLSConfigError(ValueError):
    """The certificate or key cannot be loaded; the message names the files."""


def create_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(
            f"Cannot load TLS certificate {certfile!r} / key {keyfile!r}: {exc}"
        ) from exc
    if ca_certs:
        context.load_verify_locations(ca_certs)
    context.set_alpn_protocols(["http/1.1"])
    return context
