"""The reverse proxies whose ``X-Forwarded-For`` the console believes.

``COUNCIL_TRUSTED_PROXIES`` lists addresses and CIDR ranges. Only a request whose TCP peer is
one of them has its client address taken from ``X-Forwarded-For`` (uvicorn's
``ProxyHeadersMiddleware`` walks the header from the right and stops at the first address
that is not a trusted proxy, so a client cannot choose its own address). Without trusted
proxies the client is the TCP peer and the header is ignored. Sign-in throttling and the
audit log use that address.
"""

from __future__ import annotations

import ipaddress

from bot.errors import ConfigError

__all__ = ["Network", "parse_trusted_proxies"]

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
