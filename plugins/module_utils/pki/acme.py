"""ACME (RFC 8555) for ftps_pki, on the controller: the account, orders, challenges, ARI.

The server's key and CSR are made on the server (module_utils ``pki.steps``); this file only ever
sees CSRs and certificates. It drives the ACME protocol with certbot's ``acme`` library (PyPI
``acme``, with ``josepy``; docs/pki.md says why) and keeps the account key on the controller.

Three phases, one per module call, so that the play can answer challenges on the servers in
between (``ftps_pki_acme`` module):

1. ``renewal_info``: ACME Renewal Information (RFC 9773) for the certificates now serving: is the
   CA's suggested renewal window open? (read-only GETs, no account needed);
2. ``challenges``: for every host that needs a certificate, a new order from its CSR; returns the
   http-01 tokens and key authorizations the server must serve (dns-01: the hook is called here);
3. ``certificates``: answer the challenges, wait for the CA, finalize with the CSR, download the
   certificate and chain.

Errors never raise out of a phase for one host: they become one sentence per host (``errors``)
that ftps_pki_install turns into a failure of that host with the current certificate serving.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import os
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write

ACME_IMP_ERR: str | None = None
try:
    import josepy as jose
    import requests
    from acme import challenges as acme_challenges
    from acme import client as acme_client
    from acme import errors as acme_errors
    from acme import messages
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    HAS_ACME = True
except ImportError:  # pragma: no cover - exercised on controllers without the acme library
    HAS_ACME = False
    ACME_IMP_ERR = traceback.format_exc()

LETSENCRYPT = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
CHALLENGE_TYPES = ("http-01", "dns-01")
ACCOUNT_KEY, ACCOUNT_JSON = "account.key", "account.json"
USER_AGENT = "ftps-kit (acme-python)"
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class AcmeError(Exception):
    """An ACME problem, already phrased for an operator."""


def directory_url(url: str, staging: bool) -> str:
    """The directory to use: ``url``, or Let's Encrypt's production/staging one when empty."""
    return url or LETSENCRYPT["staging" if staging else "production"]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def iso_utc(value: _dt.datetime) -> str:
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# the account


class Account:
    """The ACME account on the controller: ``<dir>/<CA slug>/account.key`` (0600) + ``account.json``.

    One account per directory URL (a staging and a production account never mix). The key is
    ECDSA P-256 (JWS ES256), PKCS#8, encrypted when a passphrase is set; the directory is 0700.
    ``account.json`` holds the account URL once registered, so later runs contact the CA only
    when an order is due.
    """

    def __init__(self, base_dir: str, url: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", re.sub(r"^https?://", "", url)).strip("_")
        self.directory = os.path.join(base_dir, slug)
        self.key_path = os.path.join(self.directory, ACCOUNT_KEY)
        self.json_path = os.path.join(self.directory, ACCOUNT_JSON)
        self.url = url
        self.key: Any = None

    def exists(self) -> bool:
        return os.path.exists(self.key_path)

    def load(self, passphrase: str = "") -> Account:
        with open(self.key_path, "rb") as handle:
            data = handle.read()
        try:
            self.key = serialization.load_pem_private_key(data, password=passphrase.encode() or None)
        except (TypeError, ValueError) as exc:
            raise AcmeError(
                f"the ACME account key {self.key_path} cannot be read: wrong or missing "
                "ftps_pki_acme_account_passphrase"
            ) from exc
        if not isinstance(self.key, ec.EllipticCurvePrivateKey):
            raise AcmeError(f"the ACME account key {self.key_path} is not an ECDSA key")
        return self

    def create(self, passphrase: str = "") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        encryption = (
            serialization.BestAvailableEncryption(passphrase.encode())
            if passphrase
            else serialization.NoEncryption()
        )
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
        atomic_write(self.key_path, pem, 0o600)

    def ensure(self, passphrase: str, check_mode: bool) -> bool:
        """Load the key, creating it first if there is none. True if it was (would be) created."""
        if self.exists():
            self.load(passphrase)
            return False
        if not check_mode:
            self.create(passphrase)
        return True

    @property
    def jwk(self) -> Any:
        return jose.JWKEC(key=self.key)

    def registration(self) -> dict[str, Any]:
        try:
            with open(self.json_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("directory") == self.url else {}

    def save_registration(self, uri: str) -> None:
        payload = json.dumps({"directory": self.url, "uri": uri}, indent=2) + "\n"
        atomic_write(self.json_path, payload.encode(), 0o600)


# --------------------------------------------------------------------------------------------
# the connection


class Connection:
    """A client for one ACME directory: fetched lazily, verified against ``ca_bundle`` if set."""

    def __init__(self, url: str, ca_bundle: str = "", account: Account | None = None, timeout: int = 30):
        self.url = url
        self.ca_bundle = ca_bundle
        self.account = account
        self.timeout = timeout
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            verify: Any = self.ca_bundle or True
            key = self.account.jwk if self.account is not None and self.account.key is not None else None
            net = acme_client.ClientNetwork(
                key, alg=jose.ES256, verify_ssl=verify, user_agent=USER_AGENT, timeout=self.timeout
            )
            try:
                directory = acme_client.ClientV2.get_directory(self.url, net)
            except requests.exceptions.SSLError as exc:
                raise AcmeError(
                    f"the ACME directory {self.url} presents a certificate this controller does not "
                    "trust: for a private CA set ftps_pki_acme_ca_bundle to its root (PEM); "
                    f"({_short(exc)})"
                ) from exc
            except (requests.exceptions.RequestException, ValueError, acme_errors.Error) as exc:
                raise AcmeError(
                    f"cannot reach the ACME directory {self.url}: check ftps_pki_acme_directory_url "
                    f"and the controller's network ({_short(exc)})"
                ) from exc
            self._client = acme_client.ClientV2(directory, net)
        return self._client

    @property
    def directory(self) -> Any:
        return self.client.directory

    def register(
        self,
        *,
        email: str = "",
        agree_terms: bool = False,
        eab_kid: str = "",
        eab_hmac_key: str = "",
        check_mode: bool = False,
    ) -> bool:
        """Make sure the account is registered and used for signing. True if newly registered."""
        if self.account is None:
            raise AcmeError("the ACME account key is not loaded (load the account before registering it)")
        known = self.account.registration().get("uri")
        if known:
            self.client.net.account = messages.RegistrationResource(uri=known, body=messages.Registration())
            return False
        meta = self.directory.meta
        terms = getattr(meta, "terms_of_service", None)
        if terms and not agree_terms:
            raise AcmeError(
                f"the CA's terms of service ({terms}) must be agreed before an account is created: "
                "read them and set ftps_pki_acme_agree_terms: true"
            )
        eab = None
        if getattr(meta, "external_account_required", False) and not (eab_kid and eab_hmac_key):
            raise AcmeError(
                "the CA requires external account binding: set ftps_pki_acme_eab_kid and "
                "ftps_pki_acme_eab_hmac_key (from the CA's console; keep the key in a vault)"
            )
        if eab_kid and eab_hmac_key:
            try:
                eab = messages.ExternalAccountBinding.from_data(
                    account_public_key=self.account.jwk.public_key(),
                    kid=eab_kid,
                    hmac_key=eab_hmac_key,
                    directory=self.directory,
                )
            except (ValueError, TypeError) as exc:
                raise AcmeError("ftps_pki_acme_eab_hmac_key is not base64url as the CA hands it out") from exc
        if check_mode:
            return True
        registration = messages.NewRegistration.from_data(
            email=email or None,
            terms_of_service_agreed=bool(agree_terms),
            external_account_binding=eab,
        )
        try:
            regr = self.client.new_account(registration)
            uri = regr.uri
        except acme_errors.ConflictError as exc:  # the key already has an account
            uri = exc.location
            self.client.net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
        except messages.Error as exc:
            raise AcmeError(f"the CA refused to create the account: {explain_problem(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise AcmeError(f"the account could not be created: {_short(exc)}") from exc
        self.account.save_registration(uri)
        return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------------------------
# error sentences


def explain_problem(problem: Any, port: int = 80, challenge_type: str = "http-01") -> str:  # noqa: PLR0911 - one sentence per ACME error type
    """One ACME problem document (RFC 8555 6.7) → a sentence an operator can act on."""
    code = getattr(problem, "code", None) or ""
    detail = (getattr(problem, "detail", None) or "").strip()
    ident = getattr(getattr(problem, "identifier", None), "value", None)
    subject = f" {ident}" if ident else ""
    if getattr(problem, "subproblems", None):
        return "; ".join(explain_problem(sub, port, challenge_type) for sub in problem.subproblems)
    if code == "caa":
        return (
            f"CAA records forbid this CA to issue for{subject} ({detail}): add a CAA record "
            "`issue` naming this CA to the domain, or use a CA the records allow"
        )
    if code == "rateLimited":
        return (
            f"the CA rate-limited this request ({detail}): wait until the limit resets; ftps-kit "
            "orders only when a certificate is due, so check for other clients ordering the same names"
        )
    if code in ("rejectedIdentifier", "unsupportedIdentifier"):
        return (
            f"the CA will not certify{subject} ({detail}): remove that name from the SANs "
            "(ftps_pki_extra_sans; ftps_pki_san_addresses_enabled: false for IP addresses, "
            "ftps_pki_san_fqdn_enabled/_hostname_enabled for names that are not public)"
        )
    if code in ("dns",):
        return (
            f"the CA could not resolve{subject} ({detail}): a wrong or unpublished name; check its "
            "DNS records or remove it from the SANs"
        )
    if code in ("connection", "incorrectResponse", "unauthorized", "tls"):
        if challenge_type == "dns-01":
            return (
                f"the CA could not validate{subject} over dns-01 ({detail}): check that the DNS "
                "hook (ftps_pki_acme_dns_hook) published the TXT record in the zone the CA queries "
                "and raise ftps_pki_acme_dns_propagation_seconds if it is slow"
            )
        return (
            f"the CA could not reach the http-01 challenge for{subject} ({detail}): make sure the "
            f"name resolves to this server and that TCP port 80 from the CA reaches port {port} "
            "on it (ftps_pki_acme_http01_port; no other firewall, proxy or NAT in between)"
        )
    if code == "badCSR":
        return f"the CA rejected the CSR ({detail})"
    if code == "externalAccountRequired":
        return f"the CA requires external account binding ({detail}): set ftps_pki_acme_eab_kid/_hmac_key"
    if code in ("unauthorized", "accountDoesNotExist"):
        return f"the CA refused the account ({detail})"
    return f"{code or getattr(problem, 'typ', 'ACME error')}: {detail or problem}"


def explain(exc: BaseException, port: int = 80, challenge_type: str = "http-01") -> str:  # noqa: PLR0911 - one sentence per failure kind
    if isinstance(exc, AcmeError):
        return str(exc)
    if HAS_ACME and isinstance(exc, acme_errors.ValidationError):
        parts = []
        for authzr in exc.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    if getattr(chall.error, "identifier", None) is None:
                        chall.error.identifier = authzr.body.identifier
                    parts.append(explain_problem(chall.error, port, challenge_type))
        return "; ".join(parts) or "the CA could not validate the challenge"
    if HAS_ACME and isinstance(exc, messages.Error):
        return explain_problem(exc, port, challenge_type)
    if HAS_ACME and isinstance(exc, acme_errors.TimeoutError):
        return "the CA did not finish validating or issuing in time (ftps_pki_acme_timeout); try again"
    if HAS_ACME and isinstance(exc, acme_errors.IssuanceError):
        return f"the CA did not issue the certificate: {explain_problem(exc.error, port, challenge_type)}"
    if HAS_ACME and isinstance(exc, requests.exceptions.RequestException):
        return f"lost the connection to the CA: {_short(exc)}"
    return f"{type(exc).__name__}: {_short(exc)}"


# --------------------------------------------------------------------------------------------
# ACME Renewal Information (RFC 9773)


def ari_cert_id(cert: Any) -> str:
    """RFC 9773 4.1: base64url(authorityKeyIdentifier) "." base64url(DER serial), no padding."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound as exc:
        raise AcmeError("the certificate has no authority key identifier: no ARI for it") from exc
    serial = cert.serial_number
    raw = serial.to_bytes(math.ceil((serial.bit_length() + 1) / 8), "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(aki)}.{b64(raw)}"


def ari_due(
    start: _dt.datetime, end: _dt.datetime, cert_id: str, now: _dt.datetime
) -> tuple[bool, _dt.datetime]:
    """Whether to renew now, and the moment chosen in the window (RFC 9773 4.2).

    The RFC asks clients to pick a point in the window at random; ftps-kit derives the point
    from the certificate's ID so that every run makes the same choice (a run is idempotent) while
    a fleet's certificates still spread over the window.
    """
    if end <= start:
        return now >= start, start
    fraction = int.from_bytes(hashlib.sha256(cert_id.encode()).digest()[:8], "big") / 2**64
    chosen = start + (end - start) * fraction
    return now >= chosen, chosen


def renewal_info(conn: Connection, cert_pem: str, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The CA's suggested window for one certificate: ``{available, due, reason, window...}``."""
    now = now or _utcnow()
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    base = conn.directory.to_partial_json().get("renewalInfo")
    if not base:
        return {"available": False, "due": False, "reason": ""}
    cert_id = ari_cert_id(cert)
    try:
        response = conn.client.net.get(f"{base.rstrip('/')}/{cert_id}", content_type="application/json")
        body = response.json()
        window = body["suggestedWindow"]
        start = _parse_time(window["start"])
        end = _parse_time(window["end"])
    except (requests.exceptions.RequestException, acme_errors.Error, ValueError, KeyError, TypeError) as exc:
        return {
            "available": True,
            "due": False,
            "reason": "",
            "error": f"renewal info not readable: {_short(exc)}",
        }
    due, chosen = ari_due(start, end, cert_id, now)
    result = {
        "available": True,
        "due": due,
        "window_start": iso_utc(start),
        "window_end": iso_utc(end),
        "chosen": iso_utc(chosen),
        "explanation_url": body.get("explanationURL", ""),
        "cert_id": cert_id,
        "reason": "",
    }
    if due:
        why = f" ({result['explanation_url']})" if result["explanation_url"] else ""
        result["reason"] = (
            f"ari: the CA suggests renewal between {result['window_start']} and {result['window_end']}{why}"
        )
    return result


def _parse_time(value: str) -> _dt.datetime:
    text = value.strip().replace("Z", "+00:00")
    # RFC 3339 allows fractions longer than Python 3.11 parses: keep microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = _dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)


# --------------------------------------------------------------------------------------------
# orders


def create_order(conn: Connection, csr_pem: str, challenge_type: str) -> dict[str, Any]:
    """A new order from the CSR (its SANs become the identifiers, DNS and IP).

    Returns the state carried to :func:`complete_order` (order URL, finalize URL, the
    challenges to answer) and what the server must serve: ``[{identifier, token,
    key_authorization}]`` (http-01) or the TXT records (dns-01).
    """
    orderr = conn.client.new_order(csr_pem.encode())
    wanted = acme_challenges.HTTP01 if challenge_type == "http-01" else acme_challenges.DNS01
    answers, tokens, records = [], [], []
    for authzr in orderr.authorizations:
        ident = authzr.body.identifier
        if authzr.body.status == messages.STATUS_VALID:
            continue  # the CA reused a valid authorization: nothing to prove
        challb = next((c for c in authzr.body.challenges if isinstance(c.chall, wanted)), None)
        if challb is None:
            offered = (
                ", ".join(sorted({str(c.to_json().get("type")) for c in authzr.body.challenges})) or "none"
            )
            hint = " (dns-01 cannot prove an IP address)" if ident.typ == messages.IDENTIFIER_IP else ""
            raise AcmeError(
                f"the CA offers no {challenge_type} challenge for {ident.value} (offered: {offered}){hint}: "
                "set ftps_pki_acme_challenge_type to one it offers or remove the name"
            )
        answers.append({"identifier": ident.value, "challenge": challb.to_json()})
        if challenge_type == "http-01":
            _response, validation = challb.chall.response_and_validation(conn.account.jwk)
            tokens.append(
                {
                    "identifier": ident.value,
                    "token": challb.chall.encode("token"),
                    "key_authorization": validation,
                }
            )
        else:
            records.append(
                {
                    "identifier": ident.value,
                    "name": challb.chall.validation_domain_name(ident.value.removeprefix("*.")) + ".",
                    "value": challb.chall.validation(conn.account.jwk),
                }
            )
    return {
        "order": {
            "uri": orderr.uri,
            "body": orderr.body.to_json(),
            "csr": csr_pem,
        },
        "answers": answers,
        "tokens": tokens,
        "records": records,
    }


def complete_order(conn: Connection, state: dict[str, Any], timeout: int) -> tuple[str, str]:
    """Answer the order's challenges, wait for the CA, finalize; (certificate PEM, chain PEM)."""
    client = conn.client
    for answer in state.get("answers", []):
        challb = messages.ChallengeBody.from_json(answer["challenge"])
        client.answer_challenge(challb, challb.chall.response(conn.account.jwk))
    order = state["order"]
    body = order["body"]
    if isinstance(body, dict):
        body = messages.Order.from_json(body)
    orderr = messages.OrderResource(
        body=body, uri=order["uri"], csr_pem=order["csr"].encode(), authorizations=[]
    )
    # acme's polling compares naive local datetimes
    deadline = _dt.datetime.now() + _dt.timedelta(seconds=timeout)
    orderr = client.poll_authorizations(orderr, deadline)
    orderr = client.finalize_order(orderr, deadline)
    return split_fullchain(orderr.fullchain_pem)


def split_fullchain(fullchain: str) -> tuple[str, str]:
    blocks = _PEM_CERT.findall(fullchain or "")
    if not blocks:
        raise AcmeError("the CA returned no certificate")
    return blocks[0] + "\n", "".join(b + "\n" for b in blocks[1:])


# --------------------------------------------------------------------------------------------
# dns-01 hook


# Commands run through the module's AnsibleModule.run_command (argv lists, never a shell):
# ``run(argv) -> (rc, stdout, stderr)``, given by the module.
Runner = Callable[[list[str]], tuple[int, str, str]]


def run_dns_hook(
    hook: str, action: str, records: list[dict[str, str]], run: Runner, timeout: int = 60
) -> None:
    """``<hook> add|remove <record name> <TXT value>`` once per record (docs/pki.md, dns-01),
    each bounded by coreutils' ``timeout`` (exit status 124 when it ran out)."""
    for record in records:
        try:
            rc, out, err = run(["timeout", str(timeout), hook, action, record["name"], record["value"]])
        except OSError as exc:
            raise AcmeError(f"the dns-01 hook {hook} could not run: {_short(exc)}") from exc
        if rc == 124:
            raise AcmeError(f"the dns-01 hook {hook} could not run: it did not finish within {timeout} s")
        if rc != 0:
            raise AcmeError(
                f"the dns-01 hook `{hook} {action} {record['name']}` failed with status "
                f"{rc}: {(err or out).strip()[:300]}"
            )


# --------------------------------------------------------------------------------------------
# the phases the module runs


def phase_renewal_info(conn: Connection, certificates: list[dict[str, str]]) -> dict[str, Any]:
    """``[{host, certificate}]`` → ``{due: {host: reason}, info: {host: {...}}, warnings}``."""
    due: dict[str, str] = {}
    info: dict[str, Any] = {}
    warnings: list[str] = []
    wanted = [item for item in certificates if item.get("certificate")]
    if not wanted:
        return {"due": due, "info": info, "warnings": warnings, "available": False}
    try:
        available = bool(conn.directory.to_partial_json().get("renewalInfo"))
    except AcmeError as exc:
        warnings.append(f"ARI skipped: {exc}")
        return {"due": due, "info": info, "warnings": warnings, "available": False}
    if not available:
        return {"due": due, "info": info, "warnings": warnings, "available": False}
    for item in wanted:
        host = item["host"]
        try:
            result = renewal_info(conn, item["certificate"])
        except (AcmeError, ValueError) as exc:
            warnings.append(f"{host}: ARI skipped: {exc}")
            continue
        info[host] = result
        if result.get("error"):
            warnings.append(f"{host}: {result['error']}")
        if result["due"]:
            due[host] = result["reason"]
    return {"due": due, "info": info, "warnings": warnings, "available": True}


def phase_challenges(
    conn: Connection,
    requests_: list[dict[str, str]],
    *,
    challenge_type: str,
    port: int = 80,
    dns_hook: str = "",
    dns_propagation_seconds: int = 0,
    run: Runner | None = None,
) -> dict[str, Any]:
    """One new order per ``{host, csr}`` with a CSR; per-host errors, never a raise."""
    orders: dict[str, Any] = {}
    tokens: dict[str, list[dict[str, str]]] = {}
    errors: dict[str, str] = {}
    published = False
    for item in requests_:
        host, csr = item.get("host", ""), item.get("csr", "")
        if not csr:
            continue
        try:
            state = create_order(conn, csr, challenge_type)
            if state["records"]:
                if not dns_hook:
                    raise AcmeError(
                        "ftps_pki_acme_challenge_type is dns-01 but ftps_pki_acme_dns_hook is empty"
                    )
                if run is None:
                    raise AcmeError("dns-01 needs a command runner (the module's run_command)")
                run_dns_hook(dns_hook, "add", state["records"], run)
                published = True
        except Exception as exc:
            errors[host] = explain(exc, port, challenge_type)
            continue
        orders[host] = state
        tokens[host] = state["tokens"]
    if published and dns_propagation_seconds > 0:
        time.sleep(dns_propagation_seconds)
    return {"orders": orders, "tokens": tokens, "errors": errors}


def phase_certificates(
    conn: Connection,
    orders: dict[str, Any],
    *,
    challenge_type: str,
    port: int = 80,
    timeout: int = 120,
    dns_hook: str = "",
    run: Runner | None = None,
) -> dict[str, Any]:
    certificates: dict[str, str] = {}
    chains: dict[str, str] = {}
    errors: dict[str, str] = {}
    warnings: list[str] = []
    for host, state in orders.items():
        try:
            certificates[host], chains[host] = complete_order(conn, state, timeout)
        except Exception as exc:
            errors[host] = explain(exc, port, challenge_type)
        finally:
            if state.get("records") and dns_hook and run is not None:
                try:
                    run_dns_hook(dns_hook, "remove", state["records"], run)
                except AcmeError as exc:
                    warnings.append(f"{host}: the TXT record was not removed: {exc}")
    return {"certificates": certificates, "chains": chains, "errors": errors, "warnings": warnings}
