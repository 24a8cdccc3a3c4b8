"""The SSRF guard: which URLs the server may fetch (scheme, length, host spelling, resolved addresses)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, unquote, urlsplit

from download_server.domain.urls import ALLOWED_SCHEMES, MAX_URL_LENGTH, UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT_SECONDS = 10.0

# Explicit tables rather than ipaddress's is_global alone: its notion of "global" differs between Python
# patch releases and calls some tunnelling and site-local ranges global (2002::/16, fec0::/10).
_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", includes the unspecified address
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, home of cloud metadata endpoints
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast
    )
)
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32 and benchmarking 2001:2::/48
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_COMPATIBLE = ipaddress.IPv6Network("::/96")

# Characters browsers and IDNA treat as a label separator, besides the ASCII full stop.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_HEX_PART = re.compile(r"0x[0-9a-f]*")
# Whitespace (\s in a str pattern is exactly str.isspace()) and control characters: one C-speed scan,
# where a per-character generator cost ~10% of the event loop's time on a fast HLS download.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_DEC_PART = re.compile(r"[0-9]+")


def is_public_ip(ip: IPAddress) -> bool:
    """True only for addresses reachable on the public internet, seeing through IPv4-in-IPv6 embeddings."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return is_public_ip(mapped)
        if ip in _NAT64:
            return is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _SIX_TO_FOUR:
            sixtofour = ip.sixtofour
            return sixtofour is not None and is_public_ip(sixtofour)
        teredo = ip.teredo
        if teredo is not None:
            return False  # a tunnel endpoint: never a media origin, and it can hide any client address
        if ip in _COMPATIBLE:
            return False
        if any(ip in net for net in _NON_PUBLIC_V6):
            return False
        return ip.is_global and not (ip.is_multicast or ip.is_site_local or ip.is_link_local)
    if any(ip in net for net in _NON_PUBLIC_V4):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local)


# The host functions are pure and a download asks about the same host for every segment: cached, they
# cost a dict lookup instead of NFKC folding and address parsing on the event loop each time.
@functools.lru_cache(maxsize=1024)
def normalize_host(host: str) -> str:
    """The host as a resolver would see it: percent-decoded, NFKC-folded, lower-case, no brackets or trailing dot."""
    text = unicodedata.normalize("NFKC", unquote(host)).translate(_DOTS).lower().strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.rstrip(".")


@functools.lru_cache(maxsize=1024)
def parse_host_literal(host: str) -> IPAddress | None:
    """The address a host spelled as an IP literal stands for, or None for a host name.

    Understands every spelling inet_aton and browsers accept: decimal, octal and hex parts, short forms
    (`127.1`), one 32-bit number, bracketed IPv6 with a zone id, a trailing dot and percent-encoding.
    Raises UrlRefused for a host that looks numeric but is no valid address, since resolvers disagree on it.
    """
    text = normalize_host(host)
    if ":" in text:
        bare = text.split("%", 1)[0]
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            raise UrlRefused("the host is not a valid IPv6 address") from None
    parts = text.split(".")
    # As in the WHATWG URL standard: a host whose last label is a number is an IPv4 address or invalid.
    if not parts or not _is_number(parts[-1]):
        return None
    return _parse_ipv4(parts)


def _is_number(part: str) -> bool:
    return bool(_DEC_PART.fullmatch(part) or _HEX_PART.fullmatch(part))


def _parse_number(part: str) -> int:
    if _HEX_PART.fullmatch(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not all(c in "01234567" for c in part):
            raise UrlRefused("the host is not a valid IPv4 address (bad octal part)")
        return int(part, 8)
    if not _DEC_PART.fullmatch(part):
        raise UrlRefused("the host is not a valid IPv4 address")
    return int(part)


def _parse_ipv4(parts: list[str]) -> ipaddress.IPv4Address:
    if len(parts) > 4 or any(part == "" for part in parts):
        raise UrlRefused("the host is not a valid IPv4 address")
    numbers = [_parse_number(part) for part in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise UrlRefused("the host is not a valid IPv4 address (a part is out of range)")
    value = last
    for position, n in enumerate(head):
        value += n << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _valid_host_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    for label in name.split("."):
        if not 1 <= len(label) <= 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(c.isalnum() or c in "-_" for c in label):
            return False
    return True


def check_url_syntax(url: str) -> SplitResult:
    """Check scheme, length, host and userinfo without any I/O; return the split URL."""
    _check_text(url)
    parts, port = _split(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise UrlRefused("the URL scheme must be http or https")
    if "@" in parts.netloc:
        raise UrlRefused("the URL must not carry credentials (user@host)")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if port == 0:
        raise UrlRefused("the URL port must be between 1 and 65535")
    _check_host_name(normalize_host(parts.hostname))
    return parts


def _check_text(url: str) -> None:
    """Refuse what is wrong with the URL as a string, before any parser reads it its own way."""
    if not url:
        raise UrlRefused("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _SPACE_OR_CONTROL.search(url):
        raise UrlRefused("the URL contains whitespace or control characters")
    if "\\" in url:
        # Browsers and some clients read a backslash as a slash, others as part of the host: ambiguous.
        raise UrlRefused("the URL contains a backslash")


def _split(url: str) -> tuple[SplitResult, int | None]:
    """The split URL and its port; urlsplit reads the port lazily, so a bad one is only found here."""
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError:
        raise UrlRefused("the URL is malformed (bad brackets or port)") from None


def _check_host_name(host: str) -> None:
    """A normalized host must be an address literal or a well-formed name other than localhost."""
    if host == "localhost" or host.endswith(".localhost"):
        raise UrlRefused("the URL host must not be localhost")
    if parse_host_literal(host) is None and not _valid_host_name(host):
        raise UrlRefused("the URL host is not a valid host name")


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _resolved_address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        raise UrlRefused("the URL host resolved to something that is not an address") from None


async def check_url(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> None:
    """Refuse (UrlRefused) a URL the server must not fetch.

    With allow_private only the syntax is checked. Otherwise a literal address must be public, and a host
    name must resolve, with every address it resolves to public (one private answer is enough to refuse:
    the client may connect to any of them).
    """
    parts = check_url_syntax(url)
    if allow_private:
        return
    assert parts.hostname is not None  # check_url_syntax guarantees a host
    host = normalize_host(parts.hostname)
    literal = parse_host_literal(host)
    if literal is not None:
        if not is_public_ip(literal):
            raise UrlRefused("the URL host is a loopback, private or otherwise non-public address")
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            addresses = await (resolve or _getaddrinfo)(host, port)
    except (OSError, UnicodeError, TimeoutError):
        raise UrlRefused("the URL host could not be resolved") from None
    if not addresses:
        raise UrlRefused("the URL host could not be resolved")
    if not all(is_public_ip(_resolved_address(address)) for address in addresses):
        raise UrlRefused("the URL host resolves to a loopback, private or otherwise non-public address")
