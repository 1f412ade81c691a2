"""``ftpsd metrics``: a Prometheus textfile for node_exporter's textfile collector.

Built from what ``ftpsd status --json`` sees (:func:`ftpsd.status.collect`): the deployed
certificate and chain on disk, what each worker serves, the last reload and the open sessions.
The exposition format comes from ``prometheus_client``; the file is written with
:func:`ftpskit_common.atomicfile.atomic_write`, so the collector never reads half a file. docs/metrics.md
documents every metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

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
    if info["served_matches_deployed"] is not None:
        gauge(
            "ftpsd_cert_served_matches_deployed",
            "1 if every worker serves the deployed certificate, 0 if any serves another one.",
        ).set(1 if info["served_matches_deployed"] else 0)
    return reg


def render(config_path: str, renew_before_days: int) -> bytes:
    return generate_latest(registry_for(collect(config_path), renew_before_days))


def write(config_path: str, out: str, renew_before_days: int) -> None:
    """Write the textfile ``out`` atomically (node_exporter reads ``*.prom``; mode 0644)."""
    atomic_write(out, render(config_path, renew_before_days), 0o644)
