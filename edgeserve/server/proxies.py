"""The client's address: the direct peer, unless that peer is a proxy we were told to trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sanic import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chain(request: Request) -> list[str]:
    """The addresses proxies recorded, nearest the client first (RFC 7239, else X-Forwarded-For)."""
    forwarded = request.headers.getall("forwarded", [])
    if forwarded:
        return [
            pair.split("=", 1)[1]
            for element in ",".join(forwarded).split(",")
            for pair in element.split(";")
            if pair.strip().lower().startswith("for=")
        ]
    return [hop for hop in ",".join(request.headers.getall("x-forwarded-for", [])).split(",")]


class ClientAddress:
    """Walks the forwarded chain from our side: the first hop we do not trust is the client."""

    def __init__(self, trusted: Iterable[str]):
        self.networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def of(self, request: Request) -> str:
        client = request.ip or "unknown"
        if not self.trusts(_address(client)):
            return client  # a direct client: its headers say nothing we can believe
        for hop in reversed(forwarded_chain(request)):
            address = _address(hop)
            if address is None:
                break  # unreadable: keep the last proxy we trust as the client
            client = str(address)
            if not self.trusts(address):
                break
        return client
