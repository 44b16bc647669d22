"""The real client address of a console request, behind reverse proxies the council trusts.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only as far as
it was added by a trusted proxy: starting from the TCP peer, each hop that is a trusted proxy
hands over to the address it says it received the request from (the header's last entry
first). The first address that is not a trusted proxy is the client. Without trusted proxies
(``COUNCIL_TRUSTED_PROXIES`` unset) the client is the TCP peer and the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from bot.errors import ConfigError

__all__ = ["Network", "client_address", "parse_trusted_proxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(
    value: str, *, variable: str = "COUNCIL_TRUSTED_PROXIES"
) -> tuple[Network, ...]:
    """Parse a comma- or space-separated list of addresses and CIDR ranges.

    Raises:
        ConfigError: An item is not an address or a network (names the variable and item).
    """
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                "environment", variable, f"{item!r} is not an IP address or CIDR range"
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: str, proxies: Iterable[Network]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in proxies)


def client_address(peer: str, forwarded_for: Iterable[str], proxies: tuple[Network, ...]) -> str:
    """Return the client's address.

    Args:
        peer: The TCP peer's address.
        forwarded_for: Every ``X-Forwarded-For`` header value, in order.
        proxies: Trusted proxies (:func:`parse_trusted_proxies`).
    """
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        if _address(hop) is None:
            return client  # a malformed entry: believe nothing beyond the last good hop
        client = hop
        if not _trusted(hop, proxies):
            break
    return client
