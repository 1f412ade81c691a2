"""``ftpsd metrics``: a Prometheus textfile for node_exporter's textfile collector.

Built from what ``ftpsd status --json`` sees (:func:`ftpsd.status.collect`): the deployed
certificate and chain on disk, what each worker serves, the last reload and the open sessions.
The exposition format comes from ``prometheus_client``; the file is written with
:func:`ftpskit_common.atomicfile.atomic_write`, so the collector never reads half a file. docs/metrics.md
documents every metric.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily

from ftpsd import counters as vocab
from ftpsd.status import collect
from ftpskit_common.atomicfile import atomic_write

DAY = 86_400


def registry_for(info: dict, renew_before_days: int) -> CollectorRegistry:
    reg = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=reg)

    up = gauge("ftpsd_up", "1 if the ftpsd daemon is running and every worker reported its state.")
    workers = info["workers"]
    up.set(1 if info["running"] and workers and all(w["reported"] for w in workers) else 0)

    dep = info["deployed"]
    if dep is not None:
        gauge(
            "ftpsd_cert_not_after_timestamp_seconds",
            "NotAfter of the deployed (on-disk) leaf certificate, seconds since the epoch.",
        ).set(dep["not_after"])
        gauge(
            "ftpsd_cert_not_before_timestamp_seconds",
            "NotBefore of the deployed (on-disk) leaf certificate, seconds since the epoch.",
        ).set(dep["not_before"])
        if dep["chain_not_after"] is not None:
            gauge(
                "ftpsd_chain_not_after_timestamp_seconds",
                "Earliest NotAfter among the deployed chain's certificates (leaf excluded).",
            ).set(dep["chain_not_after"])
        gauge(
            "ftpsd_cert_renewal_due_timestamp_seconds",
            "When the PKI renews the deployed certificate: NotAfter minus ftps_pki_renew_before_days.",
        ).set(dep["not_after"] - renew_before_days * DAY)
        _exporter_names(gauge, dep)
        gauge(
            "ftpsd_cert_info",
            "The deployed (on-disk) certificate; always 1.",
            ("fingerprint_sha256", "serial", "subject", "issuer"),
        ).labels(dep["fingerprint"], dep["serial"], dep["subject"], dep["issuer"]).set(1)

    served = gauge(
        "ftpsd_served_cert_info",
        "The certificate each worker has in memory and serves; always 1.",
        ("worker", "fingerprint_sha256", "serial"),
    )
    reload_time = gauge(
        "ftpsd_last_reload_timestamp_seconds", "When each worker last handled a reload.", ("worker",)
    )
    reload_ok = gauge(
        "ftpsd_last_reload_success", "1 if each worker's last reload applied, 0 if refused.", ("worker",)
    )
    loaded = gauge(
        "ftpsd_cert_loaded_timestamp_seconds",
        "When each worker read the certificate it serves.",
        ("worker",),
    )
    sessions = gauge("ftpsd_sessions", "Open FTPS control sessions, per worker.", ("worker",))
    for w in workers:
        if not w["reported"]:
            continue
        index = str(w["index"])
        cert = w["certificate"]
        served.labels(index, cert.get("fingerprint", ""), cert.get("serial", "")).set(1)
        sessions.labels(index).set(w.get("sessions") or 0)
        if cert.get("loaded_at"):
            loaded.labels(index).set(cert["loaded_at"])
        last = w.get("last_reload")
        if last:
            reload_time.labels(index).set(last["time"])
            reload_ok.labels(index).set(1 if last["result"] == "ok" else 0)
    reg.register(_WorkerCounters([w for w in workers if w["reported"]]))
    if info["served_matches_deployed"] is not None:
        gauge(
            "ftpsd_cert_served_matches_deployed",
            "1 if every worker serves the deployed certificate, 0 if any serves another one.",
        ).set(1 if info["served_matches_deployed"] else 0)
    return reg


def _listed(values: list[str]) -> str:
    """ssl_exporter's list label format: ",a,b," (empty when there is none)."""
    return "," + ",".join(values) + "," if values else ""


def _exporter_names(gauge, dep: dict) -> None:
    """The deployed leaf's expiry also under the names (and labels) of ssl_exporter's file
    prober and enix/x509-certificate-exporter, so alerts and dashboards written for them work."""
    names = dep["names"]
    ssl_labels = ("file", "serial_no", "issuer_cn", "cn", "dnsnames", "ips", "emails", "ou")
    ssl_values = (
        dep["path"],
        names["serial_decimal"],
        names["issuer_cn"],
        names["subject_cn"],
        _listed(names["dns"]),
        _listed(names["ips"]),
        _listed(names["emails"]),
        _listed(names["ou"]),
    )
    x509_labels = ("filepath", "filename", "serial_number", "subject_CN", "issuer_CN")
    x509_values = (
        dep["path"],
        os.path.basename(dep["path"]),
        names["serial_decimal"],
        names["subject_cn"],
        names["issuer_cn"],
    )
    for prefix, labels, values in (
        ("ssl_file_cert", ssl_labels, ssl_values),
        ("x509_cert", x509_labels, x509_values),
    ):
        for field, key in (("not_after", "not_after"), ("not_before", "not_before")):
            gauge(
                f"{prefix}_{field}",
                f"{field.replace('_', ' ').capitalize()} of the deployed leaf certificate, seconds since"
                f" the epoch (the {prefix}_{field} of the certificate exporters).",
                labels,
            ).labels(*values).set(dep[key])


# name, help, labels (besides worker), the keys of ftpsd.counters in label order
_COUNTERS = (
    (
        "ftpsd_transfers",
        "File transfers (RETR, STOR, STOU, APPE) ended, by direction and result.",
        ("direction", "result"),
        [(f"transfers/{d}/{r}", (d, r)) for d in vocab.DIRECTIONS for r in vocab.TRANSFER_RESULTS],
    ),
    (
        "ftpsd_transfer_bytes",
        "Bytes of file data moved by ended transfers, by direction and result.",
        ("direction", "result"),
        [(f"bytes/{d}/{r}", (d, r)) for d in vocab.DIRECTIONS for r in vocab.TRANSFER_RESULTS],
    ),
    (
        "ftpsd_logins",
        "Login attempts (PASS) decided: ok, failed (wrong user or password), banned, refused (user's"
        " max_connections).",
        ("result",),
        [(f"logins/{r}", (r,)) for r in vocab.LOGIN_RESULTS],
    ),
    ("ftpsd_bans", "Client addresses banned after ban_after_failures failed logins.", (), [("bans", ())]),
    (
        "ftpsd_sessions_refused",
        "Connections refused before any command, by reason.",
        ("reason",),
        [(f"sessions_refused/{r}", (r,)) for r in vocab.SESSION_REFUSALS],
    ),
    (
        "ftpsd_reloads",
        "Reloads this worker handled: ok (applied) or failed (refused; the previous state serves).",
        ("result",),
        [(f"reloads/{r}", (r,)) for r in vocab.RELOAD_RESULTS],
    ),
    (
        "ftpsd_client_certificate_logins",
        "Logins decided with a client certificate: ok, or why it was refused (none, untrusted,"
        " revoked, expired, crl, no_client_auth, chain_too_long, no_user, ambiguous, not_allowed,"
        " mismatch); data_mismatch: data connections refused for another certificate.",
        ("result",),
        [(f"client_certs/{r}", (r,)) for r in vocab.CLIENT_CERT_RESULTS],
    ),
)


class _WorkerCounters:
    """Each reported worker's counts from its status file, as counters labelled ``worker``."""

    def __init__(self, workers: list[dict]) -> None:
        self.workers = workers

    def collect(self):
        for name, doc, labels, keys in _COUNTERS:
            family = CounterMetricFamily(name, doc, labels=("worker", *labels))
            for w in self.workers:
                counts = w.get("counters") or {}
                for key, values in keys:
                    family.add_metric((str(w["index"]), *values), counts.get(key, 0))
            yield family


def render(config_path: str, renew_before_days: int) -> bytes:
    return generate_latest(registry_for(collect(config_path), renew_before_days))


def write(config_path: str, out: str, renew_before_days: int) -> None:
    """Write the textfile ``out`` atomically (node_exporter reads ``*.prom``; mode 0644)."""
    atomic_write(out, render(config_path, renew_before_days), 0o644)
