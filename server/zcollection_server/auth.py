"""Access control: users, static tokens, permissions per collection, and the Flight middleware
that authenticates every call.

Configured by the ``[auth]`` table of the server's TOML file::

    [auth]
    token_ttl = 3600                 # seconds a token issued for basic credentials lives
    token_secret = "..."             # HMAC key of issued tokens, shared by a fleet (optional)

    [auth.users.alice]
    password = "scrypt$16384$8$1$<salt>$<key>"   # zcollection-server hash-password
    permissions = { "altimetry" = "admin", "team/*" = "write", "*" = "read" }

    [auth.tokens.ci]
    sha256 = "<hex digest of the token>"          # zcollection-server new-token
    permissions = { "ci/*" = "write" }

Permissions are levels, each including the ones below it: ``read`` (discover, describe and
read), ``write`` (``do_put``: insert, update, rewrite) and ``admin`` (create and delete
collections, drop partitions, repair catalogs, create views). A caller's level on a collection
is the highest level among the patterns (``fnmatch`` globs, ``*`` crossing ``/``) matching its
name. What each Flight method and action requires is the one table :data:`REQUIRED`.

Every call carries ``authorization`` headers: ``Basic <base64 user:password>`` (answered with
a fresh ``Bearer`` token in the ``authorization`` response header, which is what Flight's
``authenticate_basic_token`` handshake reads) or ``Bearer <token>`` (an issued token, signed
and expiring, or a static one). Repeated headers are accepted: the first valid one decides.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import enum
import fnmatch
import functools
import getpass
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.flight as flight

from .calllog import CallRecord
from .errors import PermissionDenied, Unauthenticated, new_request_id, to_flight_error

_log = logging.getLogger("zcollection_server")

#: Key of the authentication middleware (``context.get_middleware(MIDDLEWARE_KEY)``).
MIDDLEWARE_KEY = "zcollection.auth"
#: Prefix of the tokens this server issues.
TOKEN_PREFIX = "zc1."
#: Default lifetime, in seconds, of a token issued for basic credentials.
DEFAULT_TOKEN_TTL = 3600.0
#: scrypt cost of new password hashes (about 16 MiB and 50 ms per verification).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAX_SCRYPT_N = 2**20
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class AuthConfigError(ValueError):
    """Raised for an invalid ``[auth]`` table."""


class Permission(enum.IntEnum):
    """Permission levels on a collection; each includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3


#: The permission each Flight method and action requires on the collection it names. None:
#: any authenticated caller (``list_flights`` and ``list_collections`` then answer only the
#: collections the caller can read). Operations missing from the table require ``admin``.
REQUIRED: dict[str, Permission | None] = {
    "list_flights": None,
    "list_actions": None,
    "get_schema": Permission.READ,
    "get_flight_info": Permission.READ,
    "do_get": Permission.READ,
    "do_put": Permission.WRITE,
    "do_exchange": Permission.ADMIN,
    "zcollection.v1.list_collections": None,
    "zcollection.v1.server_info": None,
    "zcollection.v1.health": None,
    "zcollection.v1.describe": Permission.READ,
    "zcollection.v1.list_partitions": Permission.READ,
    "zcollection.v1.describe_view": Permission.READ,
    "zcollection.v1.list_views": Permission.READ,
    "zcollection.v1.create_collection": Permission.ADMIN,
    "zcollection.v1.delete_collection": Permission.ADMIN,
    "zcollection.v1.drop_partitions": Permission.ADMIN,
    "zcollection.v1.repair_catalog": Permission.ADMIN,
    "zcollection.v1.create_view": Permission.ADMIN,
}


def required(operation: str) -> Permission | None:
    """Return the permission ``operation`` requires (``admin`` for one not in the table)."""
    return REQUIRED.get(operation, Permission.ADMIN)


# -- passwords ---------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Return ``scrypt$n$r$p$salt$key``: a salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(16)
    key = _scrypt(password.encode("utf-8"), salt, n, r, p, 32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, dklen=size, maxmem=256 * n * r * p + (1 << 20)
    )


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise AuthConfigError("password hashes look like scrypt$n$r$p$salt$key")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise AuthConfigError(f"invalid scrypt hash: {exc}") from None
    if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 64 and 0 < p <= 16):
        raise AuthConfigError("invalid scrypt cost parameters")
    if len(salt) < 8 or len(key) < 16:
        raise AuthConfigError("scrypt salt and key are too short")
    return n, r, p, salt, key


def verify_password(password: str, hashed: str) -> bool:
    """Return whether ``password`` matches ``hashed`` (from :func:`hash_password`)."""
    n, r, p, salt, key = _parse_hash(hashed)
    return hmac.compare_digest(_scrypt(password.encode("utf-8"), salt, n, r, p, len(key)), key)


def token_digest(token: str) -> str:
    """Return the SHA-256 hex digest under which a static token is configured."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    """A user or a static token and its permissions."""

    #: ``alice`` for a user, ``token:ci`` for a static token.
    name: str
    #: (glob, level) pairs.
    permissions: tuple[tuple[str, Permission], ...] = ()

    def level(self, collection: str) -> Permission | None:
        """Return the highest level granted on ``collection`` (None: nothing)."""
        levels = [lvl for glob, lvl in self.permissions if fnmatch.fnmatchcase(collection, glob)]
        return max(levels) if levels else None


@dataclass
class AuthConfig:
    """Users (with password hashes), static tokens and token settings."""

    #: User name -> (password hash, principal).
    users: dict[str, tuple[str, Principal]] = field(default_factory=dict)
    #: SHA-256 hex digest of a static token -> principal.
    tokens: dict[str, Principal] = field(default_factory=dict)
    #: Seconds a token issued for basic credentials stays valid.
    token_ttl: float = DEFAULT_TOKEN_TTL
    #: HMAC key of issued tokens (random per process unless configured).
    token_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def enabled(self) -> bool:
        """Whether any credential is configured (then every call must carry one)."""
        return bool(self.users or self.tokens)

    def add_user(self, name: str, password_hash: str, permissions: Mapping[str, str]) -> None:
        """Add user ``name`` (``password_hash`` from :func:`hash_password`)."""
        if not _USER_NAME.match(name):
            raise AuthConfigError(f"invalid user name {name!r}")
        _parse_hash(password_hash)
        self.users[name] = (password_hash, Principal(name, _permissions(name, permissions)))

    def add_token(self, name: str, sha256: str, permissions: Mapping[str, str]) -> None:
        """Add static token ``name`` whose SHA-256 hex digest is ``sha256``."""
        if not _USER_NAME.match(name):
            raise AuthConfigError(f"invalid token name {name!r}")
        digest = sha256.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise AuthConfigError(f"token {name!r}: sha256 must be 64 hex digits")
        if digest in self.tokens:
            raise AuthConfigError(f"token {name!r} has the digest of another token")
        self.tokens[digest] = Principal(f"token:{name}", _permissions(name, permissions))

    def principal(self, name: str) -> Principal | None:
        """Return the principal called ``name`` (a user, or ``token:<name>``)."""
        if name.startswith("token:"):
            return next((p for p in self.tokens.values() if p.name == name), None)
        entry = self.users.get(name)
        return entry[1] if entry is not None else None


def _permissions(owner: str, table: Any) -> tuple[tuple[str, Permission], ...]:
    if not isinstance(table, Mapping):
        raise AuthConfigError(f"{owner}: permissions map collection globs to read/write/admin")
    result = []
    for glob, level in table.items():
        if not isinstance(glob, str) or not glob:
            raise AuthConfigError(f"{owner}: invalid collection glob {glob!r}")
        try:
            result.append((glob, Permission[str(level).upper()]))
        except KeyError:
            raise AuthConfigError(
                f"{owner}: permission of {glob!r} must be read, write or admin, not {level!r}"
            ) from None
    return tuple(result)


def parse_auth_config(table: Any) -> AuthConfig:
    """Build an :class:`AuthConfig` from the ``[auth]`` table of a config file."""
    if not isinstance(table, Mapping):
        raise AuthConfigError("[auth] must be a table")
    unknown = set(table) - {"users", "tokens", "token_ttl", "token_secret"}
    if unknown:
        raise AuthConfigError(f"unknown [auth] keys: {sorted(unknown)}")
    config = AuthConfig()
    ttl = table.get("token_ttl", DEFAULT_TOKEN_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise AuthConfigError("[auth] token_ttl must be a positive number of seconds")
    config.token_ttl = float(ttl)
    if "token_secret" in table:
        secret = table["token_secret"]
        if not isinstance(secret, str) or len(secret) < 16:
            raise AuthConfigError("[auth] token_secret must be a string of 16 characters or more")
        config.token_secret = secret.encode("utf-8")
    for kind, keys in (
        ("users", {"password", "permissions"}),
        ("tokens", {"sha256", "permissions"}),
    ):
        entries = table.get(kind, {})
        if not isinstance(entries, Mapping):
            raise AuthConfigError(f"[auth.{kind}] must be a table")
        for name, entry in entries.items():
            if not isinstance(entry, Mapping) or set(entry) - keys:
                raise AuthConfigError(f"[auth.{kind}.{name}] takes only {sorted(keys)}")
            secret_key = "password" if kind == "users" else "sha256"
            value = entry.get(secret_key)
            if not isinstance(value, str):
                raise AuthConfigError(f"[auth.{kind}.{name}] needs {secret_key} (a string)")
            adder = config.add_user if kind == "users" else config.add_token
            adder(name, value, entry.get("permissions", {}))
    return config


# -- authentication ----------------------------------------------------------------------------
class Access:
    """Who a caller is and what it may do; an instance per server."""

    def __init__(
        self, config: AuthConfig | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config if config is not None else AuthConfig()
        #: Source of the current time (tests move it to expire tokens).
        self.clock = clock

    @functools.cached_property
    def _dummy_hash(self) -> str:
        return hash_password(secrets.token_hex(8))

    @property
    def enabled(self) -> bool:
        """Whether calls must carry credentials."""
        return self.config.enabled

    # tokens
    def _sign(self, payload: bytes) -> str:
        digest = hmac.new(self.config.token_secret, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def issue_token(self, user: str) -> str:
        """Return a signed token for ``user`` valid for ``token_ttl`` seconds."""
        body = {
            "sub": user,
            "exp": int(self.clock() + self.config.token_ttl),
            "n": secrets.token_hex(4),
        }
        payload = base64.urlsafe_b64encode(json.dumps(body).encode()).decode("ascii").rstrip("=")
        return f"{TOKEN_PREFIX}{payload}.{self._sign(payload.encode('ascii'))}"

    def _bearer(self, token: str) -> str | None:
        """Return the principal of a bearer token, None if it is not valid (now)."""
        if token.startswith(TOKEN_PREFIX):
            payload, _, signature = token[len(TOKEN_PREFIX) :].partition(".")
            if not hmac.compare_digest(self._sign(payload.encode("ascii", "replace")), signature):
                return None
            try:
                body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                user, expiry = str(body["sub"]), float(body["exp"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return None
            if expiry <= self.clock() or user not in self.config.users:
                return None
            return user
        principal = self.config.tokens.get(token_digest(token))
        return principal.name if principal is not None else None

    def _basic(self, encoded: str) -> str | None:
        """Return the user of ``base64(user:password)`` if the password matches."""
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return None
        entry = self.config.users.get(user) if sep else None
        # A user that does not exist costs the same time as a wrong password.
        ok = verify_password(password, entry[0] if entry else self._dummy_hash)
        return user if ok and entry is not None else None

    def authenticate(self, values: Iterable[str | bytes]) -> tuple[str, str | None]:
        """Return (principal, issued token or None) from ``authorization`` header values.

        Raises:
            Unauthenticated: If no value holds valid credentials.
        """
        seen = False
        for raw in values:
            text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            for value in text.split(","):
                scheme, _, credentials = value.strip().partition(" ")
                credentials = credentials.strip()
                if not credentials:
                    continue
                seen = True
                if scheme.lower() == "bearer":
                    principal = self._bearer(credentials)
                    if principal is not None:
                        return principal, None
                elif scheme.lower() == "basic":
                    user = self._basic(credentials)
                    if user is not None:
                        return user, self.issue_token(user)
        if seen:
            raise Unauthenticated("invalid or expired credentials")
        raise Unauthenticated(
            "this server requires credentials: an authorization header with a bearer token or "
            "basic credentials"
        )

    # authorization
    def level(self, principal: str | None, collection: str) -> Permission | None:
        """Return the level ``principal`` holds on ``collection`` (ADMIN without auth)."""
        if not self.enabled:
            return Permission.ADMIN
        found = self.config.principal(principal) if principal is not None else None
        return found.level(collection) if found is not None else None

    def allows(self, principal: str | None, permission: Permission, collection: str) -> bool:
        """Return whether ``principal`` holds ``permission`` on ``collection``."""
        level = self.level(principal, collection)
        return level is not None and level >= permission

    def authorize(self, principal: str | None, operation: str, collection: str | None) -> None:
        """Check that ``principal`` may run ``operation`` on ``collection``.

        Raises:
            Unauthenticated: If authentication is on and the call carried no credentials.
            PermissionDenied: If the principal lacks the permission :data:`REQUIRED` names.
        """
        if not self.enabled:
            return
        if principal is None or self.config.principal(principal) is None:
            raise Unauthenticated("this call needs credentials")
        permission = required(operation)
        if permission is None:
            return
        name = collection or ""
        if not self.allows(principal, permission, name):
            raise PermissionDenied(
                f"{principal!r} lacks {permission.name.lower()} permission on collection "
                f"{name!r} ({operation})"
            )

    def schemes(self) -> list[str]:
        """Return the authentication schemes accepted (``server_info``'s ``auth``)."""
        if not self.config.enabled:
            return []
        return (["basic"] if self.config.users else []) + ["bearer"]


# -- Flight plumbing ---------------------------------------------------------------------------
class _NoHandshake(flight.ServerAuthHandler):
    """Lets the Handshake call succeed: the middleware authenticates its headers."""

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""


class AuthMiddleware(flight.ServerMiddleware):
    """The authenticated caller of one call; sends the token issued for basic credentials."""

    def __init__(self, principal: str, issued: str | None) -> None:
        self.principal = principal
        self.issued = issued

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issued}"} if self.issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Authenticates every call before it reaches the server (UNAUTHENTICATED otherwise)."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[Any]]) -> AuthMiddleware:
        try:
            principal, issued = self.access.authenticate(headers.get("authorization", []))
        except Unauthenticated as exc:
            request_id = new_request_id()
            error = to_flight_error(exc, request_id)
            record = CallRecord(method=_method_name(info), request_id=request_id)
            record.finish("UNAUTHENTICATED")
            raise error from None
        return AuthMiddleware(principal, issued)


def _method_name(info: flight.CallInfo) -> str:
    method = getattr(info, "method", None)
    return str(getattr(method, "name", method)).lower()


def caller_of(context: flight.ServerCallContext | None) -> str | None:
    """Return the principal the middleware authenticated for this call (None: no auth)."""
    if context is None:
        return None
    middleware = context.get_middleware(MIDDLEWARE_KEY)
    return middleware.principal if isinstance(middleware, AuthMiddleware) else None


def server_options(access: Access, tls: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return the FlightServerBase arguments: authentication and TLS under ``kwargs``."""
    options = {**tls, **kwargs}
    if access.enabled:
        middleware = dict(options.get("middleware") or {})
        middleware.setdefault(MIDDLEWARE_KEY, AuthMiddlewareFactory(access))
        options["middleware"] = middleware
        options.setdefault("auth_handler", _NoHandshake())
    return options


# -- command line ------------------------------------------------------------------------------
def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise SystemExit("passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zcollection_server.auth hash-password | new-token``."""
    parser = argparse.ArgumentParser(
        prog="zcollection-server", description="Credentials for the [auth] table."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "hash-password", help="read a password (prompt, or one line of stdin); print its hash"
    )
    sub.add_parser("new-token", help="print a new random static token and its sha256")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        password = _read_password("Password: ")
        if not password:
            print("zcollection-server: error: empty password", file=sys.stderr)
            return 2
        print(hash_password(password))
    else:
        token = secrets.token_urlsafe(32)
        print(f"token  = {token}")
        print(f'sha256 = "{token_digest(token)}"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
