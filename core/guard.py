"""The request guard: hostile input is refused with 400 naming the field before any handler runs.

The same limits hold on every route (the middlewares run after routing, so they know the route's path
parameters and their types):

* **integers**: an id (a path parameter typed ``int``; a query parameter, form field or JSON key named ``id``
  or ending in ``_id``/``_ids``, comma-separated lists included) must lie in 1 … 2³¹−1, the range of an
  ``INTEGER`` key; any other integer in a JSON body or in a query parameter typed ``int`` in −2³¹ … 2³¹−1
  (no request value is stored in a wider column);
* **text**: no string (path or query parameter, JSON key or value, form field) may hold a C0 control
  character other than tab, CR and LF (PostgreSQL cannot store NUL); form fields, query parameters and file
  names must be valid in their charset (UTF-8 unless a part says otherwise); file names hold no control
  character at all;
* **nesting**: a JSON body nested deeper than :data:`MAX_DEPTH` arrays or objects is refused (msgspec's
  ``RecursionError`` on absurd depths is caught, and the walk over the decoded value is iterative).

Two middlewares apply them. :class:`RequestGuard`, before the access checks, refuses hostile parameters and
wraps ``receive`` so that the body of a ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` is checked as it is read
(also by the CSRF check's ``request.form()``): multipart part by part as it arrives, JSON and forms whole,
before the reader gets the last chunk. :class:`BodyReadAhead`, after the access checks, reads the rest of
the body ahead of the handler (a handler may write before it reads its form) into a spool (memory up to
1 MiB, then a temporary file) replayed to the application, under the route's size limit (413); so an
anonymous request refused with 401 is never read. A body that is not valid JSON, multipart or form data is
left for Litestar to refuse as it always did.
"""

from __future__ import annotations

import codecs
import math
import re
import tempfile
from typing import IO, Any, Final
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.enums import ParamType, ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.typing import FieldDefinition
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from core.errors import Invalid

__all__ = [
    "ID_MAX",
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "BodyReadAhead",
    "RequestGuard",
    "check_json",
    "check_text",
    "name_problem",
    "within_limits",
]

#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_DEPTH: Final = 64
#: Bounds of a signed 32-bit ``INTEGER`` column; ids start at 1.
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
ID_MAX: Final = INT_MAX

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ID_SUFFIXES = ("_id", "_ids")
#: A JSON string holds a control character only through an escape: ``\u0000``…``\u001f``, ``\b`` or ``\f``
#: (a raw one is invalid JSON); without such an escape in the body, its strings need no search.
_ESCAPED_CONTROL = re.compile(rb"\\(?:u00[01]|[bf])")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MULTIPART = "multipart/form-data"
_URLENCODED = "application/x-www-form-urlencoded"
#: A body read ahead stays in memory up to this size, then goes to a temporary file; replayed in chunks.
SPOOL_MEMORY: Final = 1024 * 1024
REPLAY_CHUNK: Final = 64 * 1024


def is_id(name: str) -> bool:
    """Whether a parameter or key names a row id (``id``, ``…_id``, ``…_ids``)."""
    return name == "id" or name.endswith(_ID_SUFFIXES)


def check_text(field: str, value: str) -> None:
    """400 when ``value`` holds a control character other than tab, CR or LF."""
    if _CONTROL.search(value):
        raise Invalid(field, "Control characters are not allowed (tab, CR and LF are).")


def check_integer(field: str, value: int, *, ident: bool) -> None:
    """400 when an integer is outside what the database stores (ids: 1 … 2³¹−1)."""
    low, high = (1, ID_MAX) if ident else (INT_MIN, INT_MAX)
    if not low <= value <= high:
        raise Invalid(field, "Must be an integer from {low} to {high}.", code="out_of_range", low=low, high=high)


def check_integer_text(field: str, text: str, *, integer: bool = False) -> None:
    """Bound the integers written as text in a parameter or form field: every comma-separated integer of a
    field named as an id, or the value of one declared ``int``. Other text is left to the field's own rules."""
    ident = is_id(field)
    if not (ident or integer):
        return
    for part in text.split(",") if ident else [text]:
        part = part.strip()
        if _INTEGER.fullmatch(part):
            digits = part.lstrip("+-").lstrip("0")  # no int() of a 100,000-digit string
            value = int(part) if len(digits) <= 12 else (-1 if part.startswith("-") else 1) * 10**12
            check_integer(field, value, ident=ident)


def within_limits(value: dict[str, Any] | list[Any], strings: bool) -> bool:
    """Whether a decoded JSON object or array keeps every limit: the fast walk, without recursion or paths
    (``strings`` false when the raw body shows that no string can hold a control character)."""
    search = _CONTROL.search
    seen: set[str] = set()
    stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
    while stack:
        item, depth, ident = stack.pop()
        if depth >= MAX_DEPTH:
            return False
        if type(item) is list:
            for child in item:
                kind = type(child)
                if kind is int:
                    if not ((1 if ident else INT_MIN) <= child <= INT_MAX):
                        return False
                elif kind is str:
                    if strings and search(child):
                        return False
                elif kind is dict or kind is list:
                    stack.append((child, depth + 1, ident))
            continue
        for key, child in item.items():
            if strings and key not in seen:
                if search(key):
                    return False
                seen.add(key)
            kind = type(child)
            if kind is int:
                if not 1 <= child <= INT_MAX and (child < INT_MIN or child > INT_MAX or is_id(key)):
                    return False
            elif kind is str:
                if strings and search(child):
                    return False
            elif kind is dict or kind is list:
                stack.append((child, depth + 1, is_id(key)))
    return True


def check_json(value: Any, root: str = "body", *, strings: bool = True) -> None:
    """Check a decoded JSON value without recursion: depth, strings (keys too) and integers (ids by key). A fast
    walk finds whether anything is wrong; only then a second one names the field."""
    if type(value) in (dict, list) and within_limits(value, strings):
        return
    name_problem(value, root)


def name_problem(value: Any, root: str = "body") -> None:
    """The slow walk of :func:`check_json`: 400 naming the first field found that breaks a limit."""
    stack: list[tuple[Any, str, int, bool]] = [(value, root, 0, False)]
    while stack:
        item, path, depth, ident = stack.pop()
        if isinstance(item, str):
            check_text(path, item)
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            check_integer(path, item, ident=ident)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise Invalid(path, "Nested deeper than {limit} levels.", code="too_deep", limit=MAX_DEPTH)
            if isinstance(item, dict):
                for key, child in item.items():
                    child_path = key if depth == 0 else f"{path}.{key}"
                    check_text(child_path, key)
                    stack.append((child, child_path, depth + 1, is_id(key)))
            else:
                for index, child in enumerate(item):
                    stack.append((child, f"{path}[{index}]", depth + 1, ident))


def _decode_json(body: bytes) -> None:
    """Check a body that may be JSON; a body msgspec cannot read is left for Litestar to refuse."""
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise Invalid("body", "Nested deeper than {limit} levels.", code="too_deep", limit=MAX_DEPTH) from None
    except msgspec.MsgspecError:
        return
    check_json(value, strings=_ESCAPED_CONTROL.search(body) is not None)


def _unquote(raw: bytes, field: str | None) -> str:
    """One ``application/x-www-form-urlencoded`` name or value, decoded as UTF-8 or refused."""
    data = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        name = field if field is not None else data.decode("utf-8", "replace")
        raise Invalid(name, "Not valid UTF-8.", code="encoding") from None


def _pairs(encoded: bytes) -> list[tuple[str, str]]:
    """Decoded ``(name, value)`` pairs of a query string or form body; each checked for encoding and controls."""
    out = []
    for piece in encoded.split(b"&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition(b"=")
        name = _unquote(raw_name, None)
        if _NAME_CONTROL.search(name):
            shown = name.encode("unicode_escape").decode("ascii")
            raise Invalid(shown, "The name holds a control character.")
        value = _unquote(raw_value, name)
        check_text(name, value)
        out.append((name, value))
    return out


class _MultipartInspector:
    """Checks a multipart body as it streams: names, file names and text fields; file contents pass by."""

    def __init__(self, boundary: bytes, part_limit: int) -> None:
        self.parser = PushMultipartParser(boundary, header_charset="latin-1", max_segment_count=part_limit)
        self.broken = False
        self.segment: MultipartSegment | None = None
        self.name = ""
        self.charset = "utf-8"
        self.text: bytearray | None = None

    def feed(self, chunk: bytes, more: bool) -> None:
        """Inspect the next chunk (``more`` false on the last)."""
        if self.broken:
            return
        try:
            if chunk:
                self._parts(chunk)
            if not more and not self.parser.closed:
                self._parts(b"")
        except (ParserError, ParserLimitReached):
            self.broken = True  # Litestar's own parser refuses the body as it always did

    def _parts(self, chunk: bytes) -> None:
        for part in self.parser.parse(chunk):
            if isinstance(part, MultipartSegment):
                self._start(part)
            elif part:
                if self.text is not None:
                    self.text.extend(part)
            elif self.segment is not None:
                self._end()

    def _start(self, segment: MultipartSegment) -> None:
        self.segment = segment
        self.name = _latin1_utf8(segment.name or "", None)
        if _NAME_CONTROL.search(self.name):
            shown = self.name.encode("unicode_escape").decode("ascii")
            raise Invalid(shown, "The name holds a control character.")
        if segment.filename:
            filename = _latin1_utf8(segment.filename, self.name)
            if _NAME_CONTROL.search(filename):
                raise Invalid(self.name, "The file name holds a control character.", code="filename")
            self.text = None
            return
        self.charset = segment.charset or "utf-8"
        try:
            codecs.lookup(self.charset)
        except LookupError:
            raise Invalid(self.name, "Unknown charset {charset}.", code="encoding", charset=self.charset) from None
        self.text = bytearray()

    def _end(self) -> None:
        if self.text is not None:
            try:
                value = bytes(self.text).decode(self.charset)
            except UnicodeDecodeError:
                raise Invalid(self.name, "Not valid {charset}.", code="encoding", charset=self.charset) from None
            check_text(self.name, value)
            check_integer_text(self.name, value)
        self.segment, self.text = None, None


def _latin1_utf8(text: str, field: str | None) -> str:
    """A header value read as Latin-1 (lossless), decoded as the UTF-8 it should be; 400 when it is not."""
    raw = text.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        name = field if field is not None else raw.decode("utf-8", "replace")
        what = "The file name is not valid UTF-8." if field is not None else "The field name is not valid UTF-8."
        raise Invalid(name, what, code="encoding") from None


class _Spool:
    """A request body read ahead of the application: in memory up to :data:`SPOOL_MEMORY`, then in a temporary
    file; replayed to the application as ``http.request`` messages."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.file: IO[bytes] | None = None
        self.tail: Message | None = None  # a disconnect met while reading, handed on after the body

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.file is None and self.size > SPOOL_MEMORY:
            self.file = tempfile.TemporaryFile()
            self.file.writelines(self.chunks)
            self.chunks = []
        if self.file is not None:
            self.file.write(chunk)
        else:
            self.chunks.append(chunk)

    def replay(self, receive: Receive) -> Receive:
        """A ``receive`` giving the body read ahead, then the original ``receive``."""
        if self.file is not None:
            self.file.seek(0)
        pending = True

        async def again() -> Message:
            nonlocal pending
            if pending:
                if self.file is not None:
                    chunk = self.file.read(REPLAY_CHUNK)
                    more = self.file.tell() < self.size
                else:
                    chunk = self.chunks.pop(0) if self.chunks else b""
                    more = bool(self.chunks)
                pending = more
                return {"type": "http.request", "body": chunk, "more_body": more}
            if self.tail is not None:
                tail, self.tail = self.tail, None
                return tail
            return await receive()

        return again

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _BodyInspector:
    """Wraps ``receive``: each body chunk is checked before whoever reads the body gets it; multipart part by
    part, JSON and forms once complete (before their last chunk is handed on)."""

    def __init__(self, receive: Receive, scope: Scope) -> None:
        self.receive = receive
        self.finished = False
        self.content_type, options = _content_type(scope)
        self.multipart: _MultipartInspector | None = None
        self.buffer: list[bytes] | None = None
        if self.content_type == _MULTIPART:
            if options.get("boundary"):
                part_limit = scope["litestar_app"].multipart_form_part_limit  # type: ignore[typeddict-item]
                self.multipart = _MultipartInspector(options["boundary"].encode("latin-1"), part_limit)
        else:
            self.buffer = []

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request" or self.finished:
            return message
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        more = bool(message.get("more_body", False))
        if self.multipart is not None:
            self.multipart.feed(chunk, more)
        elif self.buffer is not None:
            self.buffer.append(chunk)
            if not more:
                body, self.buffer = b"".join(self.buffer), None
                if self.content_type == _URLENCODED:
                    for name, value in _pairs(body):
                        check_integer_text(name, value)
                elif body.strip():
                    _decode_json(body)
        self.finished = not more
        return message


async def _read_ahead(scope: Scope, receive: Receive) -> _Spool:
    """Read the rest of the body through the inspector into a spool, under the route's size limit (413)."""
    handler = scope["route_handler"]  # type: ignore[typeddict-item]
    limit = handler.resolve_request_max_body_size() or math.inf
    announced = _header(scope, b"content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise RequestEntityTooLarge
    spool = _Spool()
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                spool.tail = message
                break
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            if chunk:
                spool.write(chunk)
                if spool.size > limit:
                    raise RequestEntityTooLarge
            if not message.get("more_body", False):
                break
    except BaseException:
        spool.close()
        raise
    return spool


_INSPECTOR = "madrasa_body_inspector"


class RequestGuard(ASGIMiddleware):
    """Refuses hostile path and query parameters at once, and has the body checked as it is read."""

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._int_queries: dict[int, frozenset[str]] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the parameters, then pass the request on with its body inspected as it is read."""
        handler = scope["route_handler"]  # type: ignore[typeddict-item]
        for name, value in scope.get("path_params", {}).items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                check_integer(name, value, ident=True)
            elif isinstance(value, str):
                check_text(name, value)
            elif hasattr(value, "__fspath__"):
                check_text(name, str(value))
        query = scope.get("query_string", b"")
        if query:
            ints = self._int_query_names(handler)
            for name, value in _pairs(query):
                check_integer_text(name, value, integer=name in ints)
        if scope["method"] in _BODY_METHODS:
            inspector = _BodyInspector(receive, scope)
            scope.setdefault("state", {})[_INSPECTOR] = inspector  # type: ignore[typeddict-item]
            receive = inspector
        await next_app(scope, receive, send)

    def _int_query_names(self, handler: Any) -> frozenset[str]:
        """The query parameters a handler declares as integers (cached per handler)."""
        key = id(handler)
        if key not in self._int_queries:
            names = set()
            signature = getattr(handler, "parsed_fn_signature", None)
            for name, field in getattr(signature, "parameters", {}).items():
                kwarg = field.kwarg_definition
                param_type = getattr(kwarg, "param_type", ParamType.QUERY)
                if param_type == ParamType.QUERY and _is_int(field):
                    names.add(getattr(kwarg, "name", None) or name)
            self._int_queries[key] = frozenset(names)
        return self._int_queries[key]


class BodyReadAhead(ASGIMiddleware):
    """After the access checks, before the handler: the rest of the body is read (and so checked) ahead, since a
    handler may write before it reads its form. An anonymous request refused by the access checks is never read."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Read the body through the inspector into a spool, then replay it to the application."""
        inspector = scope.get("state", {}).get(_INSPECTOR)
        if inspector is None or inspector.finished:
            await next_app(scope, receive, send)
            return
        spool = await _read_ahead(scope, receive)
        try:
            await next_app(scope, spool.replay(receive), send)
        finally:
            spool.close()


def _is_int(field: FieldDefinition) -> bool:
    """Whether a parameter is an integer, an optional one or a list of them."""
    if field.is_optional or field.is_non_string_collection:
        return any(_is_int(inner) for inner in field.inner_types if not inner.is_none_type)
    return field.is_subclass_of(int) and not field.is_subclass_of(bool)


def _header(scope: Scope, wanted: bytes) -> str | None:
    """A request header's value (the first), decoded as Latin-1."""
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


def _content_type(scope: Scope) -> tuple[str, dict[str, str]]:
    """The request's media type, lower-cased, and its parameters (parsed as Litestar does, and kept for it)."""
    return Request(scope).content_type
