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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma- or space-separated addresses or CIDRs; ValueError names the first bad one."""
    networks = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """Who the caller really is when a trusted proxy (the dashboard) relays it in `x-forwarded-for` metadata.

    Only a peer inside `networks` is believed, and of its forwarded chain the rightmost address that is not
    itself a trusted proxy counts (anything left of it the client wrote itself and could forge).
    """

    def __init__(self, networks: tuple[Network, ...] = ()) -> None:
        self.networks = networks

    def client_key(self, peer: str | None, forwarded_for: str | None) -> str:
        direct = peer_key(peer)
        if not forwarded_for or not self._trusted(_address(_host_of(peer))):
            return direct
        for hop in reversed(forwarded_for.split(",")):
            address = _address(hop)
            if address is None:
                return direct  # a garbled chain names no one we could key by
            if not self._trusted(address):
                return peer_key(f"ipv{address.version}:{address}:0")
        return direct

    def _trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)


def _host_of(peer: str | None) -> str:
    scheme, _, rest = (peer or "").partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return ""
    return unquote(rest).rpartition(":")[0]
