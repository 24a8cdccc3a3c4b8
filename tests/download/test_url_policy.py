"""URL policy: every spelling of a non-public host is refused; public hosts pass; resolution is injected."""

from __future__ import annotations

import ipaddress

import pytest

from download_server.domain.urls import MAX_URL_LENGTH, UrlRefused
from download_server.engine.http import url_policy
from download_server.engine.http.url_policy import (
    check_url,
    check_url_syntax,
    is_public_ip,
    parse_host_literal,
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("%31%32%37.0.0.1", "127.0.0.1"),
        ("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "127.0.0.1"),  # full-width digits and dot
        ("127\u30020\u30020\u30021", "127.0.0.1"),  # ideographic full stops
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("10.1", "10.0.0.1"),
        ("3232235777", "192.168.1.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("8.8.8.8", "8.8.8.8"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[::FFFF:7F00:1]", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("[2606:4700::1111]", "2606:4700::1111"),
    ],
)
def test_parse_host_literal_understands_every_spelling(host: str, expected: str) -> None:
    assert parse_host_literal(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", ["example.com", "cdn.example.com.", "bücher.de", "1.2.3.example", "a-b_c.net"])
def test_parse_host_literal_leaves_names_alone(host: str) -> None:
    assert parse_host_literal(host) is None


@pytest.mark.parametrize(
    "host", ["256.0.0.1", "1.2.3.4.5", "08.0.0.1", "0x7g.1", "1..1", "example.123", "4294967296", "[::zz]"]
)
def test_parse_host_literal_refuses_numeric_lookalikes(host: str) -> None:
    with pytest.raises(UrlRefused):
        parse_host_literal(host)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::8.8.8.8",  # IPv4-compatible even of a public address: deprecated, never a real origin
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::1",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:2::1",  # benchmarking
        "2001:db8::1",
        "3fff::1",
        "100::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",  # site-local
        "ff02::1",
        "ff0e::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_public_ip(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"],
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_ip(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/a",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/no-scheme",
        "http://",
        "http:///path-only",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://example.com@127.0.0.1/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://loc%61lhost/",
        "http://exa mple.com/",
        "http://example.com/\n",
        "http://example.com\\@evil.com/",
        "http://[::1/",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://exa_mple..com/",
        "http://-bad-.com/",
        "http://256.1.1.1/",
        "https://example.com/" + "a" * MAX_URL_LENGTH,
    ],
)
def test_syntax_refusals(url: str) -> None:
    with pytest.raises(UrlRefused) as info:
        check_url_syntax(url)
    assert info.value.message


def test_syntax_accepts_an_ordinary_url_at_the_length_limit() -> None:
    prefix = "https://cdn.example.com:8443/live/"
    url = prefix + "x" * (MAX_URL_LENGTH - len(prefix))
    parts = check_url_syntax(url)
    assert (parts.hostname, parts.port, len(url)) == ("cdn.example.com", 8443, MAX_URL_LENGTH)


class FakeResolver:
    """Answers from a table and records what was asked; unknown names fail like getaddrinfo."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.m3u8",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1:8080/",
        "http://0.0.0.0/",
        "http://0/",
        "https://[64:ff9b::7f00:1]/",
    ],
)
async def test_literal_non_public_hosts_are_refused_without_resolving(url: str) -> None:
    resolver = FakeResolver({})
    with pytest.raises(UrlRefused):
        await check_url(url, allow_private=False, resolve=resolver)
    assert resolver.asked == []


async def test_names_resolving_to_any_private_address_are_refused() -> None:
    resolver = FakeResolver(
        {
            "internal.example.com": ["10.1.2.3"],
            "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
            "v6.example.com": ["fe80::1%eth0"],
            "empty.example.com": [],
            "junk.example.com": ["not-an-address"],
        }
    )
    for host in ["internal", "mixed", "v6", "empty", "junk", "unknown"]:
        with pytest.raises(UrlRefused):
            await check_url(f"https://{host}.example.com/x", allow_private=False, resolve=resolver)
    assert [host for host, _ in resolver.asked] == [
        f"{h}.example.com" for h in ["internal", "mixed", "v6", "empty", "junk", "unknown"]
    ]


async def test_public_names_pass_and_are_resolved_with_the_right_port() -> None:
    resolver = FakeResolver({"cdn.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    await check_url("https://CDN.Example.com./live/index.m3u8", allow_private=False, resolve=resolver)
    await check_url("http://cdn.example.com:8080/a.mp4", allow_private=False, resolve=resolver)
    await check_url("http://cdn.example.com/a.mp4", allow_private=False, resolve=resolver)
    assert resolver.asked == [("cdn.example.com", 443), ("cdn.example.com", 8080), ("cdn.example.com", 80)]


async def test_public_literal_passes_without_resolving() -> None:
    resolver = FakeResolver({})
    await check_url("http://8.8.8.8/a.jpg", allow_private=False, resolve=resolver)
    await check_url("http://[2606:4700::1111]/a.jpg", allow_private=False, resolve=resolver)
    assert resolver.asked == []


async def test_allow_private_checks_only_syntax() -> None:
    resolver = FakeResolver({})
    await check_url("http://127.0.0.1:8080/a.m3u8", allow_private=True, resolve=resolver)
    await check_url("http://internal.example.com/a.m3u8", allow_private=True, resolve=resolver)
    assert resolver.asked == []
    with pytest.raises(UrlRefused):
        await check_url("ftp://127.0.0.1/", allow_private=True, resolve=resolver)
    with pytest.raises(UrlRefused):
        await check_url("http://user:pw@127.0.0.1/", allow_private=True, resolve=resolver)


async def test_default_resolver_answers_with_address_strings() -> None:
    # A numeric host needs no DNS, so this exercises the real getaddrinfo path offline.
    assert await url_policy._getaddrinfo("127.0.0.1", 80) == ["127.0.0.1"]
