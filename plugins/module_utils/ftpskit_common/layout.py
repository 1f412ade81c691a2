"""Where ftps_pki keeps a server's certificate material: the one spelling of the path.

Standard library only. ftpsd's TLS defaults (a hand-written configuration), the ``pki_dir``
default of the modules working on a server's generations (``pki.store.STORE_ARGUMENT_SPEC``,
documented by the ``ftpskit.ftps.generations`` doc fragment) and ftps_pki's role default
(``ftps_pki_dir``, through the ``ftpskit.ftps.ftpsd_default`` lookup) read :data:`PKI_DIR`;
nobody else writes it.

Layout (docs/design.md, "Certificate material on a server")::

    <pki_dir>/gen-<UTC timestamp>-<serial hex>/{cert,key,chain,fullchain}.pem
    <pki_dir>/current  -> gen-...   (the served generation)
    <pki_dir>/previous -> gen-...   (kept for rollback)
"""

from __future__ import annotations

PKI_DIR = "/etc/ftps-kit/pki"
# The renewal window, in days: ftps_pki re-issues a certificate that expires within it, ftpsd's
# metrics give its renewal time by it, rotate.yml's due_only and report.yml flag by it. Read by
# ftpsd's TLS default, the modules' defaults and ftps_pki's role default (the lookup); nobody else
# writes the number.
RENEW_BEFORE_DAYS = 30
RENEW_BEFORE_DAYS_MAX = 36500  # a hundred years: more is a typo, not a window


def renew_before_days_problem(value: object) -> str:
    """What is wrong with ``value`` as the renewal window, or "" when nothing: the one rule, applied
    by ftpsd's config check (``tls.renew_before_days``) and by ftps_pki's preflight (the filter
    ``ftpskit.ftps.ftps_renew_window_problem``). An integer (not a boolean, not a string), 0 to
    :data:`RENEW_BEFORE_DAYS_MAX` days."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= RENEW_BEFORE_DAYS_MAX:
        return ""
    return f"must be an integer 0-{RENEW_BEFORE_DAYS_MAX} days, got {value!r}"


CERT_NAME, KEY_NAME, CHAIN_NAME, FULLCHAIN_NAME = "cert.pem", "key.pem", "chain.pem", "fullchain.pem"
CURRENT, PREVIOUS, PENDING, NEXT = "current", "previous", "pending", "next"


def current_path(name: str, pki_dir: str = PKI_DIR) -> str:
    """``<pki_dir>/current/<name>``: a file of the served generation."""
    return f"{pki_dir}/{CURRENT}/{name}"
