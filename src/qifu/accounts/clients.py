"""The client's address, as the audit trail and the limits see it.

Behind a reverse proxy every request comes from the proxy's address; the client's is in
``X-Forwarded-For``. That header is believed only when the request comes from a proxy named in
``QIFU_TRUSTED_PROXIES`` (addresses or networks, comma-separated), and then the client is the
right-most address in it that is not itself a trusted proxy: whatever a client writes into
the header itself stands to the left of what the proxies appended.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from qifu import config


@lru_cache(maxsize=8)
def _trusted(setting: str) -> tuple:
    nets = []
    for part in setting.split(","):
        if part.strip():
            try:
                nets.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise config.ConfigError(f"QIFU_TRUSTED_PROXIES 中的“{part.strip()}”不是地址或网段") from None
    return tuple(nets)


def _is_trusted(address: str, nets: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or ""
    nets = _trusted(config.get("QIFU_TRUSTED_PROXIES", "") or "")
    if not nets or not _is_trusted(remote, nets):
        return _valid(remote)
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if not _is_trusted(address, nets):
            return _valid(address)
    return _valid(forwarded[0]) if forwarded else _valid(remote)
