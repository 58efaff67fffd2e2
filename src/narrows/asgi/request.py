"""``ASGIRequest`` whose ``META`` is the one a WSGI server gives Django for the same request.

Django's own ``ASGIRequest`` leaves out keys that WSGI code reads (``SERVER_PROTOCOL``,
``wsgi.url_scheme``, ``wsgi.input``...), gives ``REMOTE_PORT`` as an int, decodes UTF-8
cookies as Latin-1, and maps a request for the mount point itself (``path == root_path``) to
an empty ``path_info`` that no URL pattern matches. This subclass builds ``META`` key by key as
PEP 3333 servers (gunicorn, mod_wsgi, granian) do, computes ``path``/``path_info`` as
``WSGIRequest`` does, and keeps everything else of Django's class.

``tests/asgi/test_request_meta.py`` compares it with ``WSGIRequest.META`` from a real WSGI
server for the same bytes on the wire.
"""

from __future__ import annotations

import io
import sys
from typing import IO, Any

from django.conf import settings
from django.core.handlers import asgi as django_asgi
from django.http import UnreadablePostError, parse_cookie
from django.utils.encoding import repercent_broken_unicode
from django.utils.functional import cached_property

import django

__all__ = ["ASGIRequest", "get_script_prefix", "path_info_of"]

_WSGI_VERSION = (1, 0)
#: Django 6.0 joins repeated Cookie headers (HTTP/2 sends one per cookie, RFC 9113 8.2.3)
#: with "; " into one cookie string; earlier versions join them with "," as any other
#: header (and ``parse_cookie`` then reads "a=1,b=2" as one cookie). narrows does what the
#: installed Django does.
_COOKIES_JOINED_AS_ONE = django.VERSION >= (6, 0)
# Header names seen before, as their META keys: a handful of names make up nearly all traffic.
_META_NAMES: dict[bytes, str | None] = {}


def get_script_prefix(scope: Any) -> str:
    """``SCRIPT_NAME``: ``FORCE_SCRIPT_NAME`` if set (as ``WSGIHandler``), else ``root_path``."""
    forced = settings.FORCE_SCRIPT_NAME
    if forced is not None:
        return str(forced)
    return str(scope.get("root_path", "") or "")


def path_info_of(path: str, script_name: str) -> str:
    """The path below the mount point, ``"/"`` for the mount point itself (as WSGI gives).

    ASGI servers disagree on whether ``path`` includes ``root_path`` (uvicorn does since
    0.26, Daphne does not): the prefix is removed when ``path`` starts with it, on a
    segment boundary, and ``path`` is taken as already relative otherwise.
    """
    prefix = script_name.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path or "/"


def _meta_name(name: bytes) -> str | None:
    """``HTTP_ACCEPT_ENCODING`` for ``b"accept-encoding"``; None for names with ``_``."""
    key = _META_NAMES.get(name)
    if key is None and name not in _META_NAMES:
        text = name.decode("latin-1")
        if "_" in text:  # an underscore would alias a hyphen: dropped, as Django and gunicorn do
            key = None
        elif text == "content-length":
            key = "CONTENT_LENGTH"
        elif text == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + text.upper().replace("-", "_")
        if len(_META_NAMES) < 512:
            _META_NAMES[name] = key
    return key


class ASGIRequest(django_asgi.ASGIRequest):
    """Django's ``ASGIRequest`` with a WSGI-identical ``META``, ``path`` and ``COOKIES``."""

    def __init__(self, scope: Any, body_file: IO[bytes] | None) -> None:
        self.scope = scope
        self._post_parse_error = False
        self._read_started = False
        self.resolver_match = None
        script_name = get_script_prefix(scope)
        path = scope["path"]
        if "\ufffd" in path and scope.get("raw_path"):
            path = _wsgi_decoded_path(scope["raw_path"])
        path_info = path_info_of(path, script_name)
        self.script_name = script_name
        self.path_info = path_info
        # As WSGIRequest: only the first slash of path_info is replaced (RFC 3986 keeps "//").
        self.path = "{}/{}".format(script_name.rstrip("/"), path_info.replace("/", "", 1))
        self.method = scope["method"].upper()
        query_string = scope.get("query_string", "")
        if isinstance(query_string, bytes):
            query_string = query_string.decode()  # non-UTF-8 raises: a 400, as in Django
        meta: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": query_string,
            "SCRIPT_NAME": script_name,
            "PATH_INFO": path_info,
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "wsgi.version": _WSGI_VERSION,
            "wsgi.url_scheme": scope.get("scheme") or "http",
            "wsgi.input": body_file,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        client = scope.get("client")
        if client:
            meta["REMOTE_ADDR"] = client[0]
            meta["REMOTE_HOST"] = client[0]
            meta["REMOTE_PORT"] = str(client[1])
        server = scope.get("server")
        if server:
            meta["SERVER_NAME"] = server[0]
            meta["SERVER_PORT"] = str(server[1]) if server[1] is not None else ""
        else:
            meta["SERVER_NAME"] = "unknown"
            meta["SERVER_PORT"] = "0"
        # Repeated headers are joined with "," as Django's ASGIRequest does (Content-Length
        # and Content-Type too; narrows' server refuses a repeated Content-Length before
        # this), cookies as the installed Django does (_COOKIES_JOINED_AS_ONE). Everything
        # is collected in the local dict so that a subclass's META setter sees one
        # assignment. Header keys never collide with the keys set above.
        repeats: dict[str, list[str]] = {}
        for name, value in scope.get("headers", ()):
            key = _meta_name(name)
            if key is None:
                continue
            text = value.decode("latin-1")
            if key in meta:
                values = repeats.get(key)
                if values is None:
                    repeats[key] = [meta[key], text]
                else:
                    values.append(text)
            else:
                meta[key] = text
        for key, values in repeats.items():
            if key == "HTTP_COOKIE" and _COOKIES_JOINED_AS_ONE:
                meta[key] = "; ".join(value.rstrip("; ") for value in values)
            else:
                meta[key] = ",".join(values)
        self.META = meta
        self._set_content_type_params(meta)  # type: ignore[attr-defined]
        self._stream = body_file  # type: ignore[assignment]

    @property
    def body(self) -> bytes:
        if not hasattr(self, "_body") and not self._read_started:
            self._cap_unseekable_stream()
        return super().body

    def _cap_unseekable_stream(self) -> None:
        """A body streamed from the client (not seekable, maybe without Content-Length) read
        up to one byte past ``DATA_UPLOAD_MAX_MEMORY_SIZE``, never whole, before Django's
        ``body`` checks its size: Django 4.2 and 5.2 read it so themselves; Django 6.1 reads
        an unseekable stream whole (its own handler spools every body to a seekable file)."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        stream = self._stream
        if limit is None or stream.seekable():
            return
        try:
            declared = int(self.META.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            declared = 0
        self._check_data_too_big(declared)  # type: ignore[attr-defined]
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise UnreadablePostError(*exc.args) from exc
        finally:
            stream.close()
        self._stream = io.BytesIO(data)  # Django's body reads it, checking its size
        self._check_data_too_big(len(data))  # type: ignore[attr-defined]

    @cached_property
    def COOKIES(self) -> dict[str, str]:  # type: ignore[override]
        # WSGIRequest re-encodes the Latin-1 header and decodes it as UTF-8.
        raw = self.META.get("HTTP_COOKIE", "")
        return parse_cookie(raw.encode("latin-1").decode(errors="replace"))


def _wsgi_decoded_path(raw_path: bytes) -> str:
    """The path as ``WSGIRequest`` decodes it: invalid UTF-8 re-percent-encoded, not U+FFFD."""
    from urllib.parse import unquote_to_bytes

    return repercent_broken_unicode(unquote_to_bytes(raw_path)).decode()
