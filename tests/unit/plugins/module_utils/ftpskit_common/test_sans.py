"""The one definition of a host's intended SAN set and the one SAN comparison
(plugins/module_utils/ftpskit_common/sans.py), shared by ftps_pki (issuance), the rotation gate
(the ftps_san_mismatch filter) and the report."""

from __future__ import annotations

import ipaddress

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.filter.ftps_sans import ftps_san_mismatch
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import (
    canonical_san,
    intended_sans,
    read_host_identity,
    san_mismatch,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import parse_san, san_to_str
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError

IDENTITY = {"hostname": "deb13", "fqdn": "ftpskit-deb13.lab.", "ipv4": "10.213.0.13", "ipv6": ""}


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        ("ftp1", "DNS:ftp1"),
        ("DNS:FTP1.Example.", "DNS:ftp1.example"),
        ("dns: ftp1", "DNS:ftp1"),
        ("10.0.0.1", "IP:10.0.0.1"),
        ("IP:2001:0db8:0:0::1", "IP:2001:db8::1"),
        ("*.example.internal", "DNS:*.example.internal"),
    ],
)
def test_canonical_spelling(value, spelled):
    assert canonical_san(value) == spelled
    # the same spelling as the certificates ftps_pki issues
    assert san_to_str(parse_san(value)) == spelled


@pytest.mark.parametrize("value", ["bad_name", "-x.example", "*.com", "IP:10.0.0.300", "a" * 64 + ".example"])
def test_invalid_names_are_refused_with_a_sentence(value):
    with pytest.raises(ValueError, match="invalid"):
        canonical_san(value)
    with pytest.raises(PKIError, match="invalid"):
        parse_san(value)


def test_intended_set_from_inventory_name_identity_and_extras():
    assert intended_sans("ftpskit-deb13", IDENTITY, extra_sans=["ftp.example.internal", "10.213.0.13"]) == [
        "DNS:ftpskit-deb13",
        "DNS:ftpskit-deb13.lab",
        "IP:10.213.0.13",
        "DNS:ftp.example.internal",
    ]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"hostname_enabled": False}, ["DNS:ftpskit-deb13.lab", "IP:10.213.0.13"]),
        ({"fqdn_enabled": False}, ["DNS:ftpskit-deb13", "IP:10.213.0.13"]),
        ({"addresses_enabled": False}, ["DNS:ftpskit-deb13", "DNS:ftpskit-deb13.lab"]),
    ],
)
def test_intended_set_follows_the_switches(flags, expected):
    assert intended_sans("ftpskit-deb13", IDENTITY, **flags) == expected


def test_localhost_names_never_go_into_the_set():
    identity = {"fqdn": "localhost.localdomain", "ipv4": "", "ipv6": ""}
    assert intended_sans("ftp1", identity, extra_sans=["LOCALHOST", ""]) == ["DNS:ftp1"]


def test_reading_this_host():
    identity = read_host_identity()
    assert set(identity) == {"hostname", "fqdn", "ipv4", "ipv6"}
    for key in ("ipv4", "ipv6"):
        if identity[key]:
            address = ipaddress.ip_address(identity[key])
            assert not (address.is_loopback or address.is_link_local or address.is_unspecified)


@pytest.mark.parametrize(
    ("served", "intended", "reason"),
    [
        (["DNS:ftp1", "IP:10.0.0.1"], ["IP:10.0.0.1", "ftp1"], ""),
        (["DNS:FTP1", "IP:10.0.0.1"], ["ftp1", "10.0.0.1"], ""),
        # the incident (issue 20): deb13's certificate named deb12 and its address, not its own
        (
            ["DNS:ftpskit-deb13", "DNS:ftpskit-deb12", "IP:10.213.0.12"],
            ["DNS:ftpskit-deb13", "IP:10.213.0.13"],
            "its SANs are not the intended set for this host (DNS:ftpskit-deb13, IP:10.213.0.13): "
            "lacks IP:10.213.0.13; also names DNS:ftpskit-deb12, IP:10.213.0.12 (not this host's)",
        ),
        (["DNS:ftp1"], ["DNS:ftp1", "IP:10.0.0.1"], "lacks IP:10.0.0.1"),
        (["DNS:ftp1", "email:a@b.example"], ["DNS:ftp1"], "also names email:a@b.example"),
        # a wildcard is a name of its own: it does not stand for the host's exact name
        (["DNS:*.example.internal"], ["DNS:ftp1.example.internal"], "lacks DNS:ftp1.example.internal"),
    ],
)
def test_exact_comparison(served, intended, reason):
    got = san_mismatch(served, intended)
    assert (got == "") if reason == "" else (reason in got)
    assert ftps_san_mismatch(served, intended) == got


def test_filter_refuses_what_is_not_a_list():
    with pytest.raises(AnsibleFilterError, match="lists"):
        ftps_san_mismatch("DNS:ftp1", ["DNS:ftp1"])
