"""A server's identity and the one definition of its intended SAN set (standard library only).

A certificate the kit issues names exactly one host: its inventory name, its fully qualified
name and its default addresses, plus names the inventory declares for it. Issuance (ftps_pki),
the rotation gate (roles/ftps_fleet/tasks/gate.yml) and the report (playbooks/report.yml) all
use this module, so they agree on what "the intended set" is:

- :func:`read_host_identity` reads the names and addresses *on the host itself* (it runs inside
  a module on that host). Nothing comes from Ansible facts: on ansible-core 2.21 a ``run_once``
  task in an earlier play can make one host's facts show on every host (ansible/ansible#87415),
  and a fact cache may be older than the host's address.
- :func:`intended_sans` builds the set from that reading and the inventory's settings.
- :func:`canonical_san` is the one spelling of a SAN (``DNS:lower.case``, ``IP:compressed``),
  the same one the X.509 reader (:mod:`.x509`) and ``ftps_pki`` print.
- :func:`san_mismatch` compares a certificate's SANs with the intended set and says, in a
  sentence, what is missing and what does not belong.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# Names a certificate never carries: they name every host.
_NEVER = frozenset({"localhost", "localhost.localdomain"})
# The default-route probes of Ansible's own facts (`ip route get`): connecting a UDP socket
# picks the source address of the route without sending a packet.
_ROUTE_PROBES = ((socket.AF_INET, "8.8.8.8"), (socket.AF_INET6, "2001:4860:4860::8888"))


def canonical_san(value: Any) -> str:
    """``DNS:name``, ``IP:addr`` or a bare name/address -> ``DNS:lower.case`` / ``IP:addr``.

    ValueError with a sentence for anything that is not a valid DNS name or IP address.
    """
    text = str(value).strip()
    kind, sep, rest = text.partition(":")
    if sep and kind.upper() in ("DNS", "IP"):
        kind, text = kind.upper(), rest.strip()
    else:
        try:
            ipaddress.ip_address(text)
            kind = "IP"
        except ValueError:
            kind = "DNS"
    if kind == "IP":
        try:
            return f"IP:{ipaddress.ip_address(text)}"
        except ValueError:
            raise ValueError(f"invalid IP address in subject alternative name {value!r}") from None
    name = text.rstrip(".").lower()
    labels = name.split(".")
    valid = 0 < len(name) <= 253 and all(_DNS_LABEL.match(label) for label in labels[1:])
    first = labels[0]
    valid = valid and (_DNS_LABEL.match(first) is not None or (first == "*" and len(labels) > 2))
    if not valid:
        raise ValueError(
            f"invalid DNS name in subject alternative name {value!r}: use letters, digits and "
            "hyphens, labels of 1-63 characters, a wildcard only as the whole first label"
        )
    return f"DNS:{name}"


def canonical_sans(values: Any) -> list[str]:
    """Canonical SANs, blanks dropped, duplicates removed (first occurrence keeps its place)."""
    seen: dict[str, None] = {}
    for value in values or []:
        if value is None or str(value).strip() == "":
            continue
        seen.setdefault(canonical_san(value), None)
    return list(seen)


def _route_source(family: int, target: str) -> str:
    """The source address of this host's route to ``target`` ('' when there is none)."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((target, 53))
            address = sock.getsockname()[0]
    except OSError:
        return ""
    parsed = ipaddress.ip_address(address.split("%")[0])
    return "" if parsed.is_unspecified or parsed.is_loopback or parsed.is_link_local else str(parsed)


def read_host_identity() -> dict[str, str]:
    """This host's own names and default addresses, read here and now (never from facts).

    ``fqdn`` as ``socket.getfqdn()`` resolves it; ``ipv4``/``ipv6``: the source address of the
    default route ('' when the host has none), which is what Ansible's ``default_ipv4`` /
    ``default_ipv6`` facts report on the same host.
    """
    return {
        "hostname": socket.gethostname(),
        "fqdn": socket.getfqdn(),
        "ipv4": _route_source(*_ROUTE_PROBES[0]),
        "ipv6": _route_source(*_ROUTE_PROBES[1]),
    }


def intended_sans(
    inventory_name: str,
    identity: dict[str, str],
    *,
    hostname_enabled: bool = True,
    fqdn_enabled: bool = True,
    addresses_enabled: bool = True,
    extra_sans: list[str] | None = None,
) -> list[str]:
    """The SAN set a certificate for this host must carry, exactly, in canonical spelling.

    The inventory name (``ftps_pki_san_hostname_enabled``), the host's FQDN
    (``ftps_pki_san_fqdn_enabled``), its default IPv4 and IPv6 addresses
    (``ftps_pki_san_addresses_enabled``), then ``ftps_pki_extra_sans``; blanks and localhost
    names dropped, duplicates removed. ``identity`` is :func:`read_host_identity` of that host.
    """
    wanted = [inventory_name] if hostname_enabled else []
    wanted += [identity.get("fqdn", "")] if fqdn_enabled else []
    wanted += [identity.get("ipv4", ""), identity.get("ipv6", "")] if addresses_enabled else []
    wanted += list(extra_sans or [])
    kept = [
        str(v).strip() for v in wanted if v is not None and str(v).strip().rstrip(".").lower() not in _NEVER
    ]
    return canonical_sans(kept)


def _as_served(value: Any) -> str:
    """A SAN as a certificate carries it: canonical when DNS/IP, else as printed (email:, URI:)."""
    try:
        return canonical_san(value)
    except ValueError:
        return str(value)


def san_mismatch(served: Any, intended: Any) -> str:
    """'' when ``served`` is exactly the ``intended`` set (order and spelling aside), else a
    sentence naming what is missing and what the certificate must not carry."""
    have = {_as_served(v) for v in served or [] if str(v).strip()}
    want = set(canonical_sans(intended))
    if have == want:
        return ""
    parts = []
    if want - have:
        parts.append("lacks " + ", ".join(sorted(want - have)))
    if have - want:
        parts.append("also names " + ", ".join(sorted(have - want)) + " (not this host's)")
    return (
        f"its SANs are not the intended set for this host ({', '.join(sorted(want)) or 'none'}): "
        + "; ".join(parts)
    )
