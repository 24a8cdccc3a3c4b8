"""Reading an MPD's XML and its values: the root parsed safely, children by local name, BaseURL levels,
inherited Segment* elements, and every number, duration and byte range checked before it reaches arithmetic.

Parsed with the standard library's ElementTree through defusedxml: an MPD is origin input, and a DTD with
entities (billion laughs, external entities) is refused before anything is expanded.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException

from download_server.engine.failures import ErrorType, FetchError

MAX_SECONDS = 366 * 86_400.0  # a duration (period, presentation, time-shift window) past a year is a lie
MAX_BYTES = 2**50
CENC = "encrypted (cenc) not supported"
_DURATION = re.compile(
    r"^(-)?P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def root_of(body: bytes) -> Element:
    if len(body) > 0 and b"<" not in body[:4096]:
        raise FetchError(ErrorType.BAD_CONTENT, "not an MPD (no XML)")
    try:
        root = SafeXml.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise FetchError(
            ErrorType.BAD_CONTENT, f"the MPD declares a DTD or entities, refused ({type(exc).__name__})"
        ) from None
    except SafeXml.ParseError as exc:
        raise FetchError(ErrorType.BAD_CONTENT, f"the MPD is not well-formed XML: {exc}") from None
    if local_name(root.tag) != "MPD":
        raise FetchError(ErrorType.BAD_CONTENT, f"not an MPD (root element {local_name(root.tag)[:40]!r})")
    return root


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child.tag) == name]


def child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((found for found in element if local_name(found.tag) == name), None)


def refuse_protection(root: Element) -> None:
    """Any ContentProtection (CENC, Widevine, PlayReady, clear key) means the media is encrypted: saving it
    would leave files nothing can play, so the task fails before one byte is fetched."""
    for element in root.iter():
        if local_name(element.tag) == "ContentProtection":
            scheme = (element.get("schemeIdUri") or "").strip()[:80]
            raise FetchError(ErrorType.BAD_CONTENT, f"{CENC} (ContentProtection {scheme})".replace(" ()", ""))


def base_url(element: Element, parent: str) -> str:
    """The first BaseURL of an element, resolved against its parent's (the MPD level against the MPD URL)."""
    found = child(element, "BaseURL")
    if found is None or not (found.text or "").strip():
        return parent
    return urljoin(parent, (found.text or "").strip())


def merged(levels: tuple[Element, ...], name: str) -> Element | None:
    """One element of that name with the attributes and children inherited down the levels (the spec's rule)."""
    found = [element for element in (child(level, name) for level in levels) if element is not None]
    if not found:
        return None
    result = Element(name)
    for element in reversed(found):  # the outer levels first, the nearest last: it overrides
        result.attrib.update(element.attrib)
        names = {local_name(inner.tag) for inner in element}
        for old in [inner for inner in result if local_name(inner.tag) in names]:
            result.remove(old)
        result.extend(element)
    return result


def init_attribute(element: Element, name: str) -> str | None:
    init = child(element, "Initialization")
    return init.get(name) if init is not None else None


# Values
def seconds(text: str | None, what: str) -> float | None:
    """An xs:duration (PT1H2M3.5S) in seconds; None when absent."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None or match.group(1):
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {what} {text[:40]!r}")
    years, months, days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups()[1:])
    total = (((years * 365 + months * 30 + days) * 24 + hours) * 60 + minutes) * 60 + secs
    if not (math.isfinite(total) and total <= MAX_SECONDS):
        raise FetchError(ErrorType.BAD_CONTENT, f"{what} out of range: {text[:40]!r}")
    return total


def number(element: Element | None, name: str, default: int, *, maximum: int = 2**63 - 1) -> int:
    value = element.get(name) if element is not None else None
    if value is None:
        return default
    try:
        parsed = int(value.strip())
    except ValueError:
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {name} {value[:40]!r}") from None
    if not -maximum <= parsed <= maximum:
        raise FetchError(ErrorType.BAD_CONTENT, f"{name} out of range: {value[:40]!r}")
    return parsed


def byte_range(text: str | None, what: str) -> tuple[int, int] | None:
    """'first-last' (inclusive, as MPDs write ranges) as (offset, length)."""
    if text is None:
        return None
    first, dash, last = text.strip().partition("-")
    if not (dash and first.isdigit() and last.isdigit()) or int(last) < int(first) or int(last) > MAX_BYTES:
        raise FetchError(ErrorType.BAD_CONTENT, f"bad {what} {text[:40]!r}")
    return int(first), int(last) - int(first) + 1


def ranged(url: str, span: tuple[int, int] | None) -> str:
    """A URL with a byte range riding in a "#mediadl-range=length@offset" fragment (how init sections travel)."""
    if span is None:
        return url
    return f"{url}#mediadl-range={span[1]}@{span[0]}"
