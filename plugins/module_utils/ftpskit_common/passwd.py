"""Password hashing and the users file of ftpsd (:data:`USERS_FILE`).

Standard library only, part of the shared package ``ftpskit_common``, so the ``ftps_users`` role
hashes and validates with the same code the daemon verifies with. The account rules (name, home,
permission, limits) are defined here once: the daemon's users file (:func:`validate_users`) and
the inventory's accounts (:func:`.accounts.check_accounts`, behind the ``ftps_users`` module and
the role's preflight filter) both apply them.

Hash formats (never plaintext):

* ``$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>`` (default). N = 2^14, r = 8, p = 1 uses 16 MiB,
  the memory of Debian's default yescrypt (``$y$j9T$``, what pam_unix writes to /etc/shadow), and
  is Django's scrypt default. On the project's 2-core test VM it costs 22 ms per check against
  13 ms for yescrypt (ln=15 would cost 60 ms), so a brute-force attempt is at least as costly as
  against a stock Debian account while a login flood costs the server a third of ln=15. Hashes
  with other parameters (ln=15, ...) keep working: they carry their own parameters.
* ``$pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`` for hosts where scrypt is unavailable
  (Python built against an OpenSSL without scrypt); 600,000 iterations (OWASP 2023) cost about
  100 ms here.

Base64 is standard alphabet without padding. Users file::

    {"version": 1,
     "users": [{"name": "alice", "hash": "$scrypt$...", "home": "/srv/ftps/alice",
                "perm": "rw", "max_rate": 0, "max_connections": 0,
                "auth": "certificate+password", "certificate_identity": "alice@example.org"}]}

``auth`` (default ``password``) says how the account logs in: ``password``, ``certificate`` (a
client certificate whose configured field equals ``certificate_identity`` exactly, no password;
no ``hash`` needed) or ``certificate+password`` (both). ``auth`` and ``certificate_identity`` are
written only when they differ from their defaults, so files of password accounts stay as they were.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from .atomicfile import atomic_write

SCRYPT_LN = 14
SCRYPT_R = 8
SCRYPT_P = 1
PBKDF2_ITERATIONS = 600_000
SALT_BYTES = 16
KEY_BYTES = 32
USERS_FILE_VERSION = 1
# Where ftpsd reads its users file when its configuration names none: the one spelling of the
# path. ftpsd's ``users.file`` default, the ftps_users module's ``path`` default (its documentation
# states it, kept equal by a test) and ftps_server's role default (``ftps_server_users_file``,
# through the ``ftpskit.ftps.ftpsd_default`` lookup) read it; nobody else writes it.
USERS_FILE = "/etc/ftpsd/users.json"
PERMS = ("ro", "rw", "upload")
SCHEMES = ("scrypt", "pbkdf2-sha256")
# Upper bounds on what a hash string may ask of us, so a hostile users file (or a pre-computed
# ``hash`` in the inventory) cannot make a login allocate gigabytes or spin for minutes: every
# login verifies one hash of each cost class in the file (ftpsd's authorizer), so one such hash
# would slow every login. scrypt: at most 128 MiB (128 * r * N bytes; 8x the default's 16 MiB)
# and 64x the default's work (N * r * p); PBKDF2: at most 10 million iterations. Salt and digest
# at most 64 bytes each: PBKDF2 (and scrypt's final PBKDF2) runs all its iterations again for
# every 32 bytes of digest, so an unbounded digest length is an unbounded cost.
_MAX_SCRYPT_LN = 20
_MAX_SCRYPT_MEMORY = 128 * 1024 * 1024
_MAX_SCRYPT_WORK = 64 * (1 << SCRYPT_LN) * SCRYPT_R * SCRYPT_P
_MAX_PBKDF2_ITERATIONS = 10_000_000
_MAX_SALT_BYTES = 64
_MAX_DIGEST_BYTES = 64
# Longest home path (Linux PATH_MAX less the NUL) and path component (NAME_MAX).
_MAX_PATH = 4095
_MAX_NAME = 255
_USER_FIELDS = (
    "name",
    "hash",
    "home",
    "perm",
    "max_rate",
    "max_connections",
    "auth",
    "certificate_identity",
)
# How an account logs in (docs/ftpsd.md, "Client certificates"); password is the default.
AUTH_MODES = ("password", "certificate", "certificate+password")
CERTIFICATE_MODES = ("certificate", "certificate+password")
MAX_IDENTITY = 255
# Matched with fullmatch: "$" would also match before a final line break ("alice\n").
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}")


class UsersFileError(ValueError):
    """The users file or a hash is invalid. ``problems`` holds one line per problem, each naming
    what is wrong (a users file is checked whole: every user, every field); the message joins them."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: bytes, salt: bytes, *, ln: int, r: int, p: int, dklen: int) -> bytes:
    n = 1 << ln
    # hashlib.scrypt needs maxmem above 128 * r * n bytes (plus a little slack).
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=129 * r * n + 1024 * 1024, dklen=dklen)


def hash_password(password: str, scheme: str = "scrypt") -> str:
    """Hash ``password`` with a fresh random salt; returns the encoded string."""
    reason = validate_password(password)
    if reason:
        raise UsersFileError(f"password {reason}")
    salt = os.urandom(SALT_BYTES)
    secret = password.encode("utf-8")
    if scheme == "scrypt":
        digest = _scrypt(secret, salt, ln=SCRYPT_LN, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
        return f"$scrypt$ln={SCRYPT_LN},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(salt)}${_b64encode(digest)}"
    if scheme == "pbkdf2-sha256":
        digest = hashlib.pbkdf2_hmac("sha256", secret, salt, PBKDF2_ITERATIONS, KEY_BYTES)
        return f"$pbkdf2-sha256${PBKDF2_ITERATIONS}${_b64encode(salt)}${_b64encode(digest)}"
    raise UsersFileError(f"unknown hash scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


@dataclass(frozen=True)
class ParsedHash:
    scheme: str
    params: dict[str, int]
    salt: bytes
    digest: bytes


def _scrypt_params(params_text: str) -> dict[str, int]:
    """``ln=N,r=N,p=N`` within the bounds (:data:`_MAX_SCRYPT_MEMORY`, :data:`_MAX_SCRYPT_WORK`)."""
    params: dict[str, int] = {}
    for item in params_text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in ("ln", "r", "p") or not value.isdigit():
            raise UsersFileError(f"scrypt parameters must be 'ln=N,r=N,p=N', got {params_text!r}")
        params[key] = int(value)
    if set(params) != {"ln", "r", "p"}:
        raise UsersFileError(f"scrypt parameters must be 'ln=N,r=N,p=N', got {params_text!r}")
    if not (1 <= params["ln"] <= _MAX_SCRYPT_LN and 1 <= params["r"] <= 32 and 1 <= params["p"] <= 16):
        raise UsersFileError(f"scrypt parameters out of range: {params_text!r}")
    n, r, p = 1 << params["ln"], params["r"], params["p"]
    if 128 * r * n > _MAX_SCRYPT_MEMORY or n * r * p > _MAX_SCRYPT_WORK:
        raise UsersFileError(
            f"scrypt parameters out of range: {params_text!r} would cost {128 * r * n >> 20} MiB and "
            f"{n * r * p // ((1 << SCRYPT_LN) * SCRYPT_R * SCRYPT_P)}x the default's work per check "
            f"(at most {_MAX_SCRYPT_MEMORY >> 20} MiB and 64x)"
        )
    return params


def parse_hash(encoded: str) -> ParsedHash:
    """Parse an encoded hash; raises UsersFileError with a one-line reason."""
    if not isinstance(encoded, str) or not encoded.startswith("$"):
        raise UsersFileError("hash must be a string like '$scrypt$ln=14,r=8,p=1$<salt>$<hash>'")
    parts = encoded.split("$")
    # "", scheme, params, salt, digest
    if len(parts) != 5:
        raise UsersFileError("hash must have the form '$<scheme>$<params>$<salt>$<hash>'")
    _empty, scheme, params_text, salt_text, digest_text = parts
    try:
        salt = _b64decode(salt_text)
        digest = _b64decode(digest_text)
    except (binascii.Error, ValueError) as exc:
        raise UsersFileError(f"hash salt or digest is not valid base64 ({exc})") from None
    if len(salt) < 8 or len(digest) < 16:
        raise UsersFileError("hash salt (>= 8 bytes) or digest (>= 16 bytes) too short")
    if len(salt) > _MAX_SALT_BYTES or len(digest) > _MAX_DIGEST_BYTES:
        raise UsersFileError(
            f"hash salt or digest too long (at most {_MAX_SALT_BYTES} bytes each; a longer digest "
            "multiplies the cost of every check)"
        )
    if scheme == "scrypt":
        params = _scrypt_params(params_text)
        return ParsedHash(scheme, params, salt, digest)
    if scheme == "pbkdf2-sha256":
        if not params_text.isdigit() or not 1 <= int(params_text) <= _MAX_PBKDF2_ITERATIONS:
            raise UsersFileError(f"pbkdf2-sha256 iterations must be 1..{_MAX_PBKDF2_ITERATIONS}")
        return ParsedHash(scheme, {"iterations": int(params_text)}, salt, digest)
    raise UsersFileError(f"unknown hash scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


# A login verifies one hash of every cost class in the users file (ftpsd's authorizer: the same
# work for every name, known or not), so the number of classes multiplies the cost of each login.
MAX_COST_CLASSES = 4


def cost_class(encoded: str) -> str:
    """What a verification of ``encoded`` costs: scheme, parameters, salt and digest sizes."""
    parsed = parse_hash(encoded)
    return f"{encoded.rsplit('$', 2)[0]}${len(parsed.salt)}${len(parsed.digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``. Constant-time comparison; False on bad hashes."""
    try:
        parsed = parse_hash(encoded)
    except UsersFileError:
        return False
    secret = password.encode("utf-8", "surrogateescape")
    if parsed.scheme == "scrypt":
        p = parsed.params
        candidate = _scrypt(secret, parsed.salt, ln=p["ln"], r=p["r"], p=p["p"], dklen=len(parsed.digest))
    else:
        candidate = hashlib.pbkdf2_hmac(
            "sha256", secret, parsed.salt, parsed.params["iterations"], len(parsed.digest)
        )
    return hmac.compare_digest(candidate, parsed.digest)


def needs_rehash(encoded: str, scheme: str = "scrypt") -> bool:
    """True if ``encoded`` is not a ``scheme`` hash at least as strong as that scheme's current
    defaults (a stronger one, e.g. scrypt ln=15, is kept). The ``ftps_users`` role re-hashes such
    a user from its password, so a users file holds one scheme and every login costs the same."""
    try:
        parsed = parse_hash(encoded)
    except UsersFileError:
        return True
    if parsed.scheme != scheme or len(parsed.salt) < SALT_BYTES:
        return True
    p = parsed.params
    if scheme == "pbkdf2-sha256":
        return p["iterations"] < PBKDF2_ITERATIONS
    return p["ln"] < SCRYPT_LN or p["r"] < SCRYPT_R or p["p"] < SCRYPT_P


def validate_user_name(name: Any) -> str | None:
    """None if ``name`` is a safe user name, else the reason."""
    if not isinstance(name, str) or name == "":
        return "must be a non-empty string"
    if "/" in name or "\\" in name:
        return "must not contain '/'"
    if ".." in name:
        return "must not contain '..'"
    if name.startswith("-"):
        return "must not start with '-'"
    if not _NAME_RE.fullmatch(name):
        return "may use only letters, digits and _ . @ + - (at most 64, not starting with '.')"
    return None


def validate_home(home: Any) -> str | None:
    """None if ``home`` is a usable home directory (absolute, not '/', no '..', printable: no NUL,
    control character or line break, at most 4095 characters and 255 per component), else the
    reason. A NUL would only fail later, when the daemon opens the path; a line break would split
    a log line."""
    if not isinstance(home, str) or not os.path.isabs(home):
        return "must be an absolute path"
    if not home.isprintable():
        return "must be printable (no NUL, control characters or line breaks)"
    if len(home) > _MAX_PATH or any(len(part.encode("utf-8")) > _MAX_NAME for part in home.split("/")):
        return f"must be at most {_MAX_PATH} characters, each component at most {_MAX_NAME} bytes"
    if os.path.normpath(home) == "/" or ".." in home.split("/"):
        return "must not be '/' or contain '..'"
    return None


def validate_password(password: Any) -> str | None:
    """None if ``password`` can be a password, else the reason: a non-empty string an FTP client can
    send in ``PASS`` (no CR, LF or NUL, which end or corrupt the command line: such an account
    could never log in)."""
    if not isinstance(password, str) or password == "":
        return "must be a non-empty string"
    if any(ch in password for ch in "\r\n\0"):
        return "must not contain CR, LF or NUL (an FTP client cannot send them)"
    return None


def duplicate_names(names: list[tuple[str, str, str]]) -> list[str]:
    """Problems for every user name that an earlier one already takes, compared without case:
    ``Alice`` and ``alice`` would be two accounts to the daemon but are one person to a reader of
    its logs and to a case-insensitive client, so a file holds one of them. ``names`` holds
    ``(label, name, where)`` in order: ``label`` names the later account in its problem, ``where``
    is how a later problem refers to this one."""
    first: dict[str, tuple[str, str]] = {}
    problems = []
    for label, name, where in names:
        key = name.casefold()
        if key in first:
            earlier, earlier_where = first[key]
            what = "duplicate user name" if earlier == name else "user name differing only in case from"
            problems.append(f"{label}: {what} {earlier!r} (first at {earlier_where})")
        first.setdefault(key, (name, where))
    return problems


def validate_perm(perm: Any) -> str | None:
    """None if ``perm`` is one of :data:`PERMS`, else the reason."""
    if perm not in PERMS:
        return f"must be one of {', '.join(PERMS)}, got {perm!r}"
    return None


def validate_limit(value: Any) -> str | None:
    """None if ``value`` is a usable ``max_rate``/``max_connections`` (an int >= 0), else the reason."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be an integer >= 0 (0 = unlimited)"
    return None


def validate_auth(auth: Any) -> str | None:
    """None if ``auth`` is one of :data:`AUTH_MODES`, else the reason."""
    if auth not in AUTH_MODES:
        return f"must be one of {', '.join(AUTH_MODES)}, got {auth!r}"
    return None


def validate_certificate_identity(identity: Any) -> str | None:
    """None if ``identity`` can be a certificate identity (the exact string a client certificate's
    configured field must carry), else the reason: a non-empty printable string (no NUL, no control
    characters, no line breaks), without surrounding blanks, at most 255 characters."""
    if not isinstance(identity, str) or identity == "":
        return "must be a non-empty string"
    if len(identity) > MAX_IDENTITY:
        return f"must be at most {MAX_IDENTITY} characters"
    if not identity.isprintable():
        return "must be printable (no NUL, control characters or line breaks)"
    if identity != identity.strip():
        return "must not begin or end with blanks"
    return None


def check_auth(auth: Any, identity: Any, has_secret: bool, missing: str) -> list[str]:
    """Problems (phrases, without the account's label) of an account's ``auth`` and
    ``certificate_identity``; ``has_secret``: the account has a password or a hash, ``missing``:
    the phrase when it needs one and has none."""
    reason = validate_auth(auth)
    if reason:
        return [f"'auth' {reason}"]
    problems = []
    if auth in CERTIFICATE_MODES or identity not in (None, ""):
        reason = validate_certificate_identity(identity)
        if reason:
            why = f"is required with auth {auth}" if identity in (None, "") else reason
            problems.append(f"'certificate_identity' {why}")
    if auth != "certificate" and not has_secret:
        problems.append(missing)
    return problems


def duplicate_identities(accounts: list[tuple[str, str]]) -> list[str]:
    """Problems for every certificate identity that two accounts share (``(name, identity)``
    pairs; empty identities ignored): a certificate must map to exactly one user."""
    owner: dict[str, str] = {}
    problems = []
    for name, identity in accounts:
        if not identity:
            continue
        if identity in owner:
            problems.append(
                f"user {name!r}: 'certificate_identity' {identity!r} is already user {owner[identity]!r}'s"
            )
        owner.setdefault(identity, name)
    return problems


@dataclass(frozen=True)
class User:
    name: str
    hash: str  # "" only for an auth = certificate account
    home: str
    perm: str = "rw"
    max_rate: int = 0
    max_connections: int = 0
    auth: str = "password"
    certificate_identity: str = ""

    def to_dict(self) -> dict[str, Any]:
        entry = asdict(self)
        # Defaults are left out: a password account's entry is what it was before these keys.
        if self.auth == "password":
            del entry["auth"]
        if not self.certificate_identity:
            del entry["certificate_identity"]
        if not self.hash:
            del entry["hash"]
        return entry


def _check_user(index: int, entry: Any) -> tuple[User | None, list[str]]:
    """The user, or None and every problem of the entry (one line each)."""
    if not isinstance(entry, dict):
        return None, [f"users[{index}]: must be an object"]
    name = entry.get("name")
    label = f"user {name!r}" if isinstance(name, str) and name else f"users[{index}]"
    problems: list[str] = []
    unknown = sorted(set(entry) - set(_USER_FIELDS))
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}")
    reason = validate_user_name(name)
    if reason:
        problems.append(f"{label}: field 'name' {reason}")
    if "home" not in entry:
        problems.append(f"{label}: field 'home' is required")
    auth = entry.get("auth", "password")
    identity = entry.get("certificate_identity", "")
    problems.extend(
        f"{label}: {line}" for line in check_auth(auth, identity, "hash" in entry, "field 'hash' is required")
    )
    if "hash" in entry:
        try:
            parse_hash(entry["hash"])
        except UsersFileError as exc:
            problems.append(f"{label}: field 'hash': {exc}")
    home = entry.get("home")
    reason = validate_home(home) if "home" in entry else None
    if reason:
        problems.append(f"{label}: field 'home' {reason}")
    perm = entry.get("perm", "rw")
    reason = validate_perm(perm)
    if reason:
        problems.append(f"{label}: field 'perm' {reason}")
    numbers = {}
    for field in ("max_rate", "max_connections"):
        value = entry.get(field, 0)
        reason = validate_limit(value)
        if reason:
            problems.append(f"{label}: field {field!r} {reason}")
        numbers[field] = value
    if problems:
        return None, problems
    return User(
        name=name,
        hash=entry.get("hash", ""),
        home=os.path.normpath(home),
        perm=perm,
        auth=auth,
        certificate_identity=identity,
        **numbers,
    ), []


def validate_users(data: Any) -> list[User]:
    """Validate the parsed JSON of a users file; returns the users or raises UsersFileError
    listing every problem found (every user, every field)."""
    if not isinstance(data, dict):
        raise UsersFileError("users file must be a JSON object with 'version' and 'users'")
    problems: list[str] = []
    unknown = sorted(set(data) - {"version", "users"})
    if unknown:
        problems.append(f"users file: unknown top-level field(s) {', '.join(unknown)}")
    if data.get("version") != USERS_FILE_VERSION:
        problems.append(f"users file: 'version' must be {USERS_FILE_VERSION}, got {data.get('version')!r}")
    entries = data.get("users")
    if not isinstance(entries, list):
        raise UsersFileError([*problems, "users file: 'users' must be a list"])
    users: list[User] = []
    names: list[tuple[str, str, str]] = []
    for index, entry in enumerate(entries):
        user, user_problems = _check_user(index, entry)
        problems.extend(user_problems)
        if user is None:
            continue
        users.append(user)
        names.append((f"user {user.name!r}", user.name, f"users[{index}]"))
    problems.extend(duplicate_names(names))
    problems.extend(duplicate_identities([(u.name, u.certificate_identity) for u in users]))
    classes = {cost_class(u.hash) for u in users if u.hash}
    if len(classes) > MAX_COST_CLASSES:
        problems.append(
            f"users file: its hashes are of {len(classes)} cost classes (scheme, parameters, salt and "
            f"digest sizes), at most {MAX_COST_CLASSES}: every login verifies one hash of each, so "
            "each class adds a check to every login; re-hash them with one scheme (the ftps_users "
            "role does, from the passwords)"
        )
    if problems:
        raise UsersFileError(problems)
    return users


def loads_users(text: str) -> list[User]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsersFileError(f"users file is not valid JSON: {exc}") from None
    return validate_users(data)


def load_users(path: str) -> list[User]:
    """Read and validate a users file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc.strerror or exc}") from None
    try:
        return loads_users(text)
    except UsersFileError as exc:
        raise UsersFileError([f"{path}: {line}" for line in exc.problems]) from None


def dumps_users(users: list[User] | list[dict[str, Any]]) -> str:
    """Serialise users (validated) to the users file's canonical JSON text (sorted by name)."""
    entries = [u.to_dict() if isinstance(u, User) else dict(u) for u in users]
    validated = validate_users({"version": USERS_FILE_VERSION, "users": entries})
    body = {
        "version": USERS_FILE_VERSION,
        "users": [u.to_dict() for u in sorted(validated, key=lambda u: u.name)],
    }
    return json.dumps(body, indent=2, sort_keys=False) + "\n"


def dump_users(users: list[User] | list[dict[str, Any]], path: str, mode: int = 0o640) -> None:
    """Write the users file atomically (temp file in the same directory, fsync, rename)."""
    atomic_write(os.path.abspath(path), dumps_users(users).encode("utf-8"), mode)
