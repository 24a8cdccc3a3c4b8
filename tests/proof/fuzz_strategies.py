"""Hypothesis strategies for any request message, built from its protobuf descriptor.

Strings lean hostile (huge, unicode, NUL, injection-looking, ids that almost parse), numbers sit at their
type's edges, enums include numbers no one defined, masks name real and made-up fields; known-good values
(ids of records that exist, real page tokens) are mixed in so the fuzzer also gets past the first check.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import field_mask_pb2, message, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

# Valid UTF-8 only: protobuf strings cannot carry lone surrogates (the client refuses to send them).
CHARS = st.characters(exclude_categories=["Cs"])
NASTY = [
    "",
    " ",
    "\x00",
    "\x00\x00\x00",
    "null",
    "None",
    "' OR 1=1 --",
    '"; DROP TABLE tasks; --',
    "%s%s%s%n",
    "{0.__class__}",
    "../../../../etc/passwd",
    "\u202e\u200b\ufeff",
    "\U0001f600" * 64,
    "a" * 256,
    "a" * 2049,
    "\r\nX-Injected: 1",
]
URLS = [
    "https://cdn.example.com/live/index.m3u8",
    "http://cdn.example.com/v.mp4",
    "https://internal.example.com/a.m3u8",
    "https://rebind.example.com/a.m3u8",
    "http://127.0.0.1:8080/x",
    "http://[::1]/x",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://169.254.169.254/latest/meta-data/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "ftp://cdn.example.com/x",
    "https://exa mple.com/x",
    "https://cdn.example.com:99999/x",
    "https://user:pass@cdn.example.com/x",
    "http://%00/",
    "https://" + "a" * 300 + ".com/",
    "//cdn.example.com/x",
    "https:///x",
]


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(CHARS, max_size=40),
        st.sampled_from(NASTY),
        # Huge strings cost nothing to generate this way; some pass the 1 MiB request limit, some do not.
        st.builds(lambda ch, n: ch * n, CHARS, st.integers(0, 300_000)),
        st.text(CHARS, max_size=10).map(lambda s: s + "\x00" + s),
    )


def id_like(known: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(list(known) or [""]),
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex.upper()),
        st.uuids().map(lambda u: "{" + str(u) + "}"),
        st.uuids().map(lambda u: str(u)[:-1] + "g"),
        st.sampled_from(list(known) or [""]).map(lambda s: s + "\x00"),
        text(),
    )


def page_token(real: Sequence[str]) -> st.SearchStrategy[str]:
    def flip(token: str, at: int) -> str:
        if not token:
            return "x"
        i = at % len(token)
        return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]

    return st.one_of(
        st.sampled_from(list(real) or [""]),
        st.builds(flip, st.sampled_from(list(real) or [""]), st.integers(0, 10_000)),
        st.sampled_from(list(real) or [""]).map(lambda t: t[: len(t) // 2]),
        st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        text(),
    )


_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def integer(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, 0, 1, -1, 20, 100, 101, 2**31 - 1, -(2**31)) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


@dataclass
class Known:
    """Values that exist on the server under test, so generated requests sometimes reach deep code."""

    ids: list[str] = field(default_factory=list)
    page_tokens: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # refresh tokens, for the auth service


def field_strategy(fd: FieldDescriptor, known: Known) -> st.SearchStrategy[Any]:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return _string_strategy(fd.name, known)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=1000)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(
            allow_nan=True, allow_infinity=True, width=64 if fd.type == FieldDescriptor.TYPE_DOUBLE else 32
        )
    if fd.type == FieldDescriptor.TYPE_ENUM:
        assert fd.enum_type is not None
        defined = [v.number for v in fd.enum_type.values]
        # proto3 enums are open: a number nobody defined arrives as that number.
        return st.one_of(st.sampled_from(defined), integer(-(2**31), 2**31 - 1))
    if fd.type in _INT_RANGES:
        return integer(*_INT_RANGES[fd.type])
    if fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type is not None:
        return message_strategy(fd.message_type, known)
    raise NotImplementedError(f"no strategy for field {fd.full_name} of type {fd.type}")


def _string_strategy(name: str, known: Known) -> st.SearchStrategy[Any]:
    """Strings shaped by the field's name (ids, URLs, page tokens...), always mixed with arbitrary text."""
    if name == "id" or name.endswith("_id"):
        return id_like(known.ids)
    if "url" in name:
        return st.one_of(st.sampled_from(URLS), st.builds("https://cdn.example.com/{}".format, text()), text())
    if name == "page_token":
        return page_token(known.page_tokens)
    if name == "email":
        return st.one_of(st.emails(), st.sampled_from(known.emails or ["a@example.com"]), text())
    if name == "refresh_token":
        return st.one_of(st.sampled_from(known.tokens or [""]), text())
    if name == "order_by":
        choices = ["create_time desc", "create_time", "update_time desc", "update_time", "id", "create_time asc"]
        return st.one_of(st.sampled_from(choices), text())
    return text()


def _field_mask(owner: Descriptor | None) -> st.SearchStrategy[message.Message]:
    names = [f.name for f in owner.fields] if owner is not None else []
    paths = st.one_of(
        st.sampled_from(names or ["x"]), st.sampled_from(["", "*", "a.b", "id", "user_id", "status"]), text()
    )
    return st.lists(paths, max_size=6).map(lambda p: field_mask_pb2.FieldMask(paths=p))


def message_strategy(
    descriptor: Descriptor, known: Known, *, owner: Descriptor | None = None
) -> st.SearchStrategy[message.Message]:
    if descriptor.full_name == "google.protobuf.FieldMask":
        return _field_mask(owner)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return st.builds(
            lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n),
            integer(-(2**63), 2**63 - 1),
            integer(-(2**31), 2**31 - 1),
        )
    cls: Callable[..., message.Message] = message_factory.GetMessageClass(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for fd in descriptor.fields:
        if fd.message_type is not None:
            one = message_strategy(fd.message_type, known, owner=descriptor)
        else:
            one = field_strategy(fd, known)
        if fd.is_repeated:
            parts[fd.name] = st.lists(one, max_size=5)
        else:
            # Unset is a value too: most real requests leave most fields empty.
            parts[fd.name] = st.one_of(st.none(), one)
    return st.fixed_dictionaries(parts).map(lambda values: cls(**{k: v for k, v in values.items() if v is not None}))
