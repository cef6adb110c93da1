"""Object stores through obstore: S3 (and S3-compatible services), GCS, Azure and HTTP.

URL forms::

    s3://bucket[/prefix]        Amazon S3 or any S3-compatible service (MinIO, moto, R2, ...)
    gs://bucket[/prefix]        Google Cloud Storage
    az://container[/prefix]     Azure Blob Storage (account from the options or the environment)
    http[s]://host[/path]       HTTP(S) (WebDAV for listings and writes); obstore hands
                                ``*.amazonaws.com``, ``*.r2.cloudflarestorage.com`` and
                                ``*.blob.core.windows.net`` URLs to the matching cloud store

Options come from three places; a key given in one place overrides the places after it:

1. the ``storage_options`` argument of :func:`zcollection.open_store`;
2. the URL's query string, for callers that only pass a URL (``create_collection``,
   ``open_collection``), e.g.
   ``s3://bucket/coll?endpoint_url=http://127.0.0.1:9000&allow_http=true&region=us-east-1``
   (credentials may go there too, but are better left to the environment; they never appear
   in ``root_uri``);
3. the environment, read by obstore as usual: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
   ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``, ...
   (``GOOGLE_*`` for GCS, ``AZURE_*`` for Azure).

Option keys:

- S3 spellings accepted besides obstore's own names: ``endpoint_url`` / ``aws_endpoint_url``
  (``endpoint``), ``aws_access_key_id`` / ``key`` (``access_key_id``),
  ``aws_secret_access_key`` / ``secret`` (``secret_access_key``), ``aws_session_token`` /
  ``token`` (``session_token``), ``region_name`` / ``aws_region`` (``region``); ``anon``
  (``skip_signature``) on every cloud; fsspec's ``client_kwargs`` dict is flattened;
- every other key of obstore's ``S3Config``, ``GCSConfig`` or ``AzureConfig`` as is;
- HTTP client options (obstore's ``ClientConfig``): ``allow_http``,
  ``allow_invalid_certificates``, ``timeout``, ``connect_timeout``, ``proxy_url``, ... or a
  nested ``client_options`` dict;
- retries: ``max_retries``, ``retry_timeout``, ``init_backoff``, ``max_backoff`` (seconds),
  ``backoff_base``, or a nested ``retry_config`` dict (obstore's defaults otherwise: 10 retries
  within 3 minutes);
- ``credential_provider``: an obstore credential provider object.

Failures of the object store (missing bucket, refused connection, denied access) surface as
one-line :class:`zcollection.StoreError` messages; a missing key is simply absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import obstore
import obstore.store
import zarr.storage
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotSupportedError
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype

from ..errors import InvalidURLError, StoreError
from .base import Store
from .factory import register_scheme

__all__ = ["SCHEMES", "ObjectStore"]

#: URL schemes served by this module.
SCHEMES = ("s3", "gs", "az", "http", "https")

#: Keys of obstore's ClientConfig (HTTP client options, shared by every provider).
_CLIENT_KEYS = frozenset(
    {
        "allow_http",
        "allow_invalid_certificates",
        "connect_timeout",
        "default_content_type",
        "default_headers",
        "http1_only",
        "http2_keep_alive_interval",
        "http2_keep_alive_timeout",
        "http2_keep_alive_while_idle",
        "http2_only",
        "pool_idle_timeout",
        "pool_max_idle_per_host",
        "proxy_url",
        "proxy_ca_certificate",
        "proxy_excludes",
        "randomize_addresses",
        "read_timeout",
        "root_certificate",
        "timeout",
        "user_agent",
    }
)
_RETRY_KEYS = frozenset(
    {"max_retries", "retry_timeout", "init_backoff", "max_backoff", "backoff_base"}
)
_S3_ALIASES = {
    "endpoint_url": "endpoint",
    "aws_endpoint_url": "endpoint",
    "aws_access_key_id": "access_key_id",
    "key": "access_key_id",
    "aws_secret_access_key": "secret_access_key",
    "secret": "secret_access_key",
    "aws_session_token": "session_token",
    "token": "session_token",
    "region_name": "region",
    "aws_region": "region",
}
#: Prefix of the environment variables obstore reads for each scheme.
_ENV_PREFIX = {"s3": "AWS_", "gs": "GOOGLE_", "az": "AZURE_"}
#: Query parameters never shown in root_uri.
_SECRET = re.compile(r"secret|token|password|key|sas|credential", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "yes", "on"})


# -- options -----------------------------------------------------------------------------------


class _Options:
    """Options of one store, sorted into obstore's provider config, client and retry parts."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.client: dict[str, Any] = {}
        self.retry: dict[str, Any] = {}
        self.credential_provider: Any = None

    def update(self, scheme: str, options: dict[str, Any]) -> None:
        """Add ``options`` (overriding what is already set)."""
        flat: dict[str, Any] = {}
        for key, value in options.items():
            if not isinstance(key, str):
                raise InvalidURLError(f"storage option names must be strings, not {key!r}")
            if key == "client_kwargs" and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        for raw_key, value in flat.items():
            key = raw_key.lower()
            if key == "client_options":
                self.client.update(
                    {k: _client_value(k, v) for k, v in _as_dict(key, value).items()}
                )
            elif key == "retry_config":
                self.retry.update(_retry_config(_as_dict(key, value)))
            elif key == "credential_provider":
                self.credential_provider = value
            elif key in _CLIENT_KEYS:
                self.client[key] = _client_value(key, value)
            elif key in _RETRY_KEYS:
                self._set_retry(key, value)
            elif key == "anon":
                self.config["skip_signature"] = _boolean(key, value)
            elif scheme == "s3" and key in _S3_ALIASES:
                self.config[_S3_ALIASES[key]] = value
            else:
                self.config[key] = value

    def _set_retry(self, key: str, value: Any) -> None:
        if key == "max_retries":
            self.retry[key] = _integer(key, value)
        elif key == "retry_timeout":
            self.retry[key] = _duration(key, value)
        else:
            backoff = dict(self.retry.get("backoff") or {})
            if key == "backoff_base":
                backoff["base"] = _number(key, value)
            else:
                backoff[key] = _duration(key, value)
            self.retry["backoff"] = backoff

    def obstore_kwargs(self, scheme: str) -> dict[str, Any]:
        """Return the keyword arguments of ``obstore.store.from_url``."""
        kwargs: dict[str, Any] = {}
        if self.config:
            kwargs["config"] = dict(self.config)
        if self.client:
            # explicit client options replace those obstore reads from the environment
            # (AWS_ALLOW_HTTP, ...), so carry the environment's over
            client = dict(self.client)
            prefix = _ENV_PREFIX.get(scheme)
            if prefix is not None:
                for name, value in os.environ.items():
                    key = name[len(prefix) :].lower()
                    if name.upper().startswith(prefix) and key in _CLIENT_KEYS:
                        client.setdefault(key, value)
            kwargs["client_options"] = client
        if self.retry:
            kwargs["retry_config"] = dict(self.retry)
        if self.credential_provider is not None:
            kwargs["credential_provider"] = self.credential_provider
        return kwargs


def _as_dict(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidURLError(f"storage option {key!r} must be a dict, not {value!r}")
    return value


def _client_value(key: str, value: Any) -> Any:
    """obstore wants strings or timedeltas for the numbers of its HTTP client options."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return _duration(key, value) if key.endswith("timeout") else str(value)


def _retry_config(value: dict[str, Any]) -> dict[str, Any]:
    result = dict(value)
    if "retry_timeout" in result:
        result["retry_timeout"] = _duration("retry_timeout", result["retry_timeout"])
    if isinstance(result.get("backoff"), dict):
        backoff = dict(result["backoff"])
        for key in ("init_backoff", "max_backoff"):
            if key in backoff:
                backoff[key] = _duration(key, backoff[key])
        result["backoff"] = backoff
    return result


def _number(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidURLError(f"storage option {key!r} must be a number, not {value!r}") from None
    if number != number or number < 0:
        raise InvalidURLError(f"storage option {key!r} must be a non-negative number")
    return number


def _integer(key: str, value: Any) -> int:
    number = _number(key, value)
    if number != int(number):
        raise InvalidURLError(f"storage option {key!r} must be an integer, not {value!r}")
    return int(number)


def _duration(key: str, value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=_number(key, value))


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | {"0", "false", "no", "off", ""}:
        return value.lower() in _TRUE
    raise InvalidURLError(f"storage option {key!r} must be a boolean, not {value!r}")


def _parse_url(url: str) -> tuple[str, str, str, dict[str, str]]:
    """Return ``(scheme, base URL, URI for display, query options)`` of a store URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURLError(f"invalid store URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidURLError(f"not an object store URL: {url!r}")
    if not parts.netloc:
        what = "host" if scheme.startswith("http") else "bucket"
        raise InvalidURLError(f"{scheme}:// URL without a {what}: {url!r}")
    if parts.fragment:
        raise InvalidURLError(f"store URL with a fragment: {url!r}")
    path = parts.path.rstrip("/")
    if any(segment in (".", "..") for segment in path.split("/")[1:]):
        raise InvalidURLError(f"store URL with '.' or '..' in its path: {url!r}")
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise InvalidURLError(f"cannot parse the query string of {url!r}") from None
    base = urlunsplit((scheme, parts.netloc, path, "", ""))
    shown = {k: v for k, v in query.items() if not _SECRET.search(k)}
    display = base + ("?" + urlencode(shown, safe=":/") if shown else "")
    return scheme, base, display, query


# -- errors ------------------------------------------------------------------------------------

_MISSING_BUCKET = ("NoSuchBucket", "ContainerNotFound", "bucket does not exist")
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_CAUSE = re.compile(r'(?:message|error): "([^"]+)"')


def _is_missing_bucket(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in _MISSING_BUCKET)


def describe(exc: BaseException) -> str:
    """Return a one-line summary of an obstore error (its first line, the service's error
    code and message, and the innermost cause such as "Connection refused")."""
    text = str(exc)
    head, _, debug = text.partition("Debug source:")
    line = head.strip().splitlines()[0] if head.strip() else type(exc).__name__
    line = re.sub(r":\s*<\?xml.*$", "", line)
    line = re.sub(r" in [0-9.]+[^ ]*s - ", " - ", line).rstrip(" :")
    extras = []
    code, message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    if code:
        extras.append(f"{code[1]}: {message[1]}" if message else code[1])
    causes = _CAUSE.findall(debug)
    if causes and causes[-1] not in line:
        extras.append(causes[-1])
    summary = line + "".join(f" ({extra})" for extra in extras)
    return summary if len(summary) <= 500 else summary[:497] + "..."


_FAILURES: tuple[type[BaseException], ...] = (ObstoreError, OSError)


class _ZarrObjectStore(zarr.storage.ObjectStore[Any]):
    """zarr's ObjectStore, whose failures are one-line StoreErrors.

    A read that finds nothing is not a failure, but it may hide a missing bucket (S3 answers
    both with a 404): the first one makes the store check, once, that the bucket exists.
    """

    def __init__(self, store: Any, *, read_only: bool = False, uri: str = "", probe: bool = True):
        super().__init__(store, read_only=read_only)
        self.uri = uri
        self._bucket_seen = not probe

    def with_read_only(self, read_only: bool = False) -> Self:
        return type(self)(
            self.store, read_only=read_only, uri=self.uri, probe=not self._bucket_seen
        )

    def _error(self, action: str, key: str, exc: BaseException) -> StoreError:
        where = f"{self.uri.split('?', 1)[0]}/{key}" if key else self.uri
        if _is_missing_bucket(exc):
            return StoreError(f"cannot {action} {where}: the bucket does not exist")
        return StoreError(f"cannot {action} {where}: {describe(exc)}")

    async def _check_bucket(self, key: str) -> None:
        """Raise StoreError if the bucket is missing (checked once per store)."""
        if self._bucket_seen:
            return
        try:
            await obstore.list_with_delimiter_async(self.store, prefix=key)
        except NotSupportedError:
            pass
        except _FAILURES as exc:
            if _is_missing_bucket(exc):
                raise self._error("read", key, exc) from exc
            # other failures (no permission to list, ...) say nothing about the bucket
        self._bucket_seen = True

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        try:
            buffer = await super().get(key, prototype, byte_range)
        except _FAILURES as exc:
            raise self._error("read", key, exc) from exc
        if buffer is None:
            await self._check_bucket(key)
        else:
            self._bucket_seen = True
        return buffer

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Buffer | None]:
        try:
            return await super().get_partial_values(prototype, key_ranges)
        except _FAILURES as exc:
            raise self._error("read", "", exc) from exc

    async def exists(self, key: str) -> bool:
        try:
            found = await super().exists(key)
        except _FAILURES as exc:
            raise self._error("read", key, exc) from exc
        if not found:
            await self._check_bucket(key)
        return found

    async def set(self, key: str, value: Buffer) -> None:
        try:
            await super().set(key, value)
        except _FAILURES as exc:
            raise self._error("write", key, exc) from exc

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        try:
            await super().set_if_not_exists(key, value)
        except _FAILURES as exc:
            raise self._error("write", key, exc) from exc

    async def delete(self, key: str) -> None:
        try:
            await super().delete(key)
        except _FAILURES as exc:
            raise self._error("delete", key, exc) from exc

    async def delete_dir(self, prefix: str) -> None:
        """Delete every key under ``prefix`` with bulk requests (1000 keys each on S3)."""
        self._check_writable()
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            metas = await obstore.list(self.store, prefix).collect_async()
            paths = [meta["path"] for meta in metas]
            for start in range(0, len(paths), 1000):
                await obstore.delete_async(self.store, paths[start : start + 1000])
        except FileNotFoundError as exc:
            if _is_missing_bucket(exc):
                raise self._error("delete", prefix, exc) from exc
        except _FAILURES as exc:
            raise self._error("delete", prefix, exc) from exc

    def list(self) -> AsyncIterator[str]:  # type: ignore[override]
        return self._guarded(super().list(), "")

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        return self._guarded(super().list_prefix(prefix), prefix)

    def list_dir(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        return self._guarded(super().list_dir(prefix), prefix)

    async def _guarded(self, names: AsyncIterator[str], prefix: str) -> AsyncIterator[str]:
        try:
            async for name in names:
                yield name
        except _FAILURES as exc:
            raise self._error("list", prefix, exc) from exc
        self._bucket_seen = True

    async def getsize(self, key: str) -> int:
        try:
            return await super().getsize(key)
        except FileNotFoundError:
            raise
        except _FAILURES as exc:
            raise self._error("read", key, exc) from exc

    async def getsize_prefix(self, prefix: str) -> int:
        try:
            return await super().getsize_prefix(prefix)
        except _FAILURES as exc:
            raise self._error("list", prefix, exc) from exc


# -- the Store ---------------------------------------------------------------------------------


class ObjectStore(Store):
    """A collection on an object store (S3, GCS, Azure, HTTP), through obstore.

    Nothing is read or written when the store is opened: an unreachable endpoint or a missing
    bucket shows on first use, as a :class:`zcollection.StoreError`.
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise InvalidURLError(f"not an object store URL: {url!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise InvalidURLError("storage_options must be a dict")
        scheme, base, display, query = _parse_url(url)
        options = _Options()
        options.update(scheme, query)
        options.update(scheme, storage_options or {})
        from_url: Any = obstore.store.from_url
        try:
            store = from_url(base, **options.obstore_kwargs(scheme))
        except (ObstoreError, ValueError, TypeError) as exc:
            raise InvalidURLError(f"cannot open {display}: {describe(exc)}") from exc
        self._setup(store, display, read_only)

    @classmethod
    def from_obstore(cls, store: Any, *, uri: str | None = None, read_only: bool = False) -> Self:
        """Wrap an obstore store built by the caller (custom credential providers, ...)."""
        if not type(store).__module__.startswith("obstore"):
            raise TypeError(f"expected an obstore store, got {type(store).__name__}")
        self = cls.__new__(cls)
        self._setup(store, uri or repr(store), read_only)
        return self

    def _setup(self, store: Any, uri: str, read_only: bool) -> None:
        self._uri = uri
        self.read_only = read_only
        self._obstore = store
        probe = not isinstance(store, obstore.store.HTTPStore)
        self._zarr = _ZarrObjectStore(store, read_only=read_only, uri=uri, probe=probe)

    @property
    def root_uri(self) -> str:
        """The store's URL (without credentials)."""
        return self._uri

    @property
    def obstore(self) -> Any:
        """The underlying obstore store."""
        return self._obstore

    def zarr_store(self) -> Any:
        """Return the underlying ``zarr.storage.ObjectStore``."""
        return self._zarr


def _factory(url: str, read_only: bool, storage_options: dict[str, Any] | None) -> Store:
    return ObjectStore(url, read_only=read_only, storage_options=storage_options)


for _scheme in SCHEMES:
    register_scheme(_scheme, _factory)
