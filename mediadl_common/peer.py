"""Who is calling, as a key for per-client limits: the host part of grpc's context.peer(), never the port."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote

# One IPv6 subscriber usually holds a whole /64: keying by full address would let one client be millions.
IPV6_PREFIX = 64


def peer_key(peer: str | None) -> str:
    """A stable key for the client behind `peer` ("ipv4:1.2.3.4:5678", "ipv6:%5B::1%5D:5678", "unix:...").

    IPv4 keys are the address, IPv6 keys the /64 network (an IPv4-mapped address counts as IPv4), local
    sockets all share "unix". Anything unrecognised is returned whole, so it still keys something.
    """
    if not peer:
        return ""
    scheme, _, rest = peer.partition(":")
    if scheme == "unix":
        return "unix"
    if scheme not in ("ipv4", "ipv6"):
        return peer
    host, _, _port = unquote(rest).rpartition(":")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
