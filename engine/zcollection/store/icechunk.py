"""Icechunk store: a collection in an icechunk repository, one commit per write block.

URL forms (``open_store`` / ``open_collection`` / ``create_collection``):

- ``icechunk:///abs/path`` or ``icechunk://relative/path``: a repository on the local file
  system (created by the first write; a read never creates anything).
- ``icechunk+s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1`` or,
  equivalently, ``icechunk://s3://bucket/prefix?...``: a repository on S3 or an S3-compatible
  object store. Query parameters (also accepted as ``storage_options``): ``endpoint_url``,
  ``region``, ``allow_http`` (default: true when ``endpoint_url`` is ``http://``),
  ``force_path_style`` (default: true when ``endpoint_url`` is given), ``anonymous``,
  ``access_key_id``, ``secret_access_key``, ``session_token``. Without explicit keys the
  credentials come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
  ``AWS_SESSION_TOKEN``, then from the usual AWS chain; the endpoint and region default to
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` and ``AWS_REGION`` / ``AWS_DEFAULT_REGION``.
- Every form takes ``?branch=<name>`` (default ``main``), ``?tag=<name>`` or
  ``?snapshot=<id>``. A tag or a snapshot pins the store read-only on that version.

``IcechunkStore(repository)`` wraps an ``icechunk.Repository`` (or an ``icechunk.Storage``)
built by the caller.

Reads see the tip of the branch (a fresh read-only session whenever the tip moved). Each write
block (``Store.session_async``) is one writable icechunk session committed once: a concurrent
commit is rebased over when the two change different nodes (e.g. different partitions);
otherwise the block raises ``ConflictError`` and commits nothing. The collection's non-Zarr
files live as the string attribute ``_payload`` of groups ``_zc_meta/<key>`` ("/" -> "__").
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import icechunk as ic
import zarr.storage

from ..errors import ConflictError, InvalidURLError, ReadOnlyError, StoreError
from .base import MetaFiles, Store, StoreSession, key_exists, read_key, write_key
from .factory import register_scheme

#: Group holding one subgroup per non-Zarr file of the collection.
META_GROUP = "_zc_meta"
#: Attribute of a meta group holding the file's UTF-8 text.
PAYLOAD_ATTR = "_payload"
DEFAULT_BRANCH = "main"

_S3_OPTIONS = (
    "endpoint_url",
    "region",
    "allow_http",
    "force_path_style",
    "anonymous",
    "access_key_id",
    "secret_access_key",
    "session_token",
)
_PUBLIC_S3_OPTIONS = ("endpoint_url", "region", "allow_http", "force_path_style", "anonymous")
_REF_OPTIONS = ("branch", "tag", "snapshot")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


#: Pause at interpreter exit so icechunk's runtime threads can release the Python objects of
#: the last async calls: a process exiting right after an icechunk call can otherwise crash
#: while finalizing (a race in the Rust/Python async bridge, seen as SIGSEGV/SIGABRT at exit).
EXIT_GRACE_SECONDS = 0.05


def _settle_at_exit() -> None:
    time.sleep(EXIT_GRACE_SECONDS)


atexit.register(_settle_at_exit)


def meta_group(key: str) -> str:
    """Return the group that holds meta file ``key`` (``_catalog/state.json`` ->
    ``_zc_meta/_catalog__state.json``)."""
    return f"{META_GROUP}/{key.strip('/').replace('/', '__')}"


def is_meta_key(key: str) -> bool:
    """Return whether ``key`` names a non-Zarr file (a JSON file other than ``zarr.json``)."""
    name = key.rstrip("/").rsplit("/", 1)[-1]
    return name.endswith(".json") and name != "zarr.json"


def _group_document(attrs: dict[str, Any]) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}).encode()


class IcechunkMetaFiles(MetaFiles):
    """Meta files as the ``_payload`` string attribute of groups under ``_zc_meta``."""

    async def read(self, store: Any, key: str) -> bytes | None:
        """Return the content of meta file ``key`` (None when absent)."""
        raw = await read_key(store, f"{meta_group(key)}/zarr.json")
        if raw is None:
            return None
        try:
            payload = json.loads(raw)["attributes"][PAYLOAD_ATTR]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"corrupt meta group for {key!r}: {exc!r}") from exc
        if not isinstance(payload, str):
            raise StoreError(f"corrupt meta group for {key!r}: {PAYLOAD_ATTR} is not a string")
        return payload.encode("utf-8")

    async def write(self, store: Any, key: str, data: bytes) -> None:
        """Write meta file ``key``; an unchanged content is not rewritten.

        Skipping identical rewrites keeps a writer from touching nodes it does not change,
        which would conflict with a concurrent writer for nothing.
        """
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(f"meta file {key!r} must be UTF-8 text on icechunk") from exc
        with contextlib.suppress(StoreError):  # a corrupt meta group is simply rewritten
            if await self.read(store, key) == data:
                return
        if not await key_exists(store, f"{META_GROUP}/zarr.json"):
            await write_key(store, f"{META_GROUP}/zarr.json", _group_document({}))
        await write_key(
            store, f"{meta_group(key)}/zarr.json", _group_document({PAYLOAD_ATTR: text})
        )

    async def exists(self, store: Any, key: str) -> bool:
        """Return whether meta file ``key`` exists."""
        return await key_exists(store, f"{meta_group(key)}/zarr.json")


# -- URL parsing ---------------------------------------------------------------------------


@dataclass
class _Location:
    """Where a repository lives, parsed from a URL."""

    kind: str  # "local" or "s3"
    path: str  # local path, or "bucket/prefix"
    refs: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


def _split_url(url: str) -> tuple[str, str]:
    """Return ``(kind, rest)`` of an icechunk URL, ``rest`` still carrying its query."""
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "icechunk+s3":
        return "s3", rest
    if scheme != "icechunk":
        raise InvalidURLError(f"not an icechunk URL: {url!r}")
    if "://" in rest.split("?", 1)[0]:
        inner, rest = rest.split("://", 1)
        if inner.lower() == "s3":
            return "s3", rest
        if inner.lower() == "file":
            return "local", rest
        raise InvalidURLError(
            f"unsupported icechunk storage {inner!r} in {url!r}; use a local path or s3://"
        )
    return "local", rest


def parse_url(url: str) -> _Location:
    """Parse an ``icechunk://`` or ``icechunk+s3://`` URL."""
    kind, rest = _split_url(url)
    path, _, query = rest.partition("?")
    path = unquote(path)
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name in params:
            raise InvalidURLError(f"parameter {name!r} given twice in {url!r}")
        params[name] = value
    allowed = _REF_OPTIONS + (_S3_OPTIONS if kind == "s3" else ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidURLError(
            f"unknown parameter(s) {unknown} in icechunk URL; allowed: {', '.join(allowed)}"
        )
    refs = {k: params.pop(k) for k in _REF_OPTIONS if k in params}
    if kind == "s3":
        path = path.strip("/")
        if not path or path.startswith("/"):
            raise InvalidURLError(f"icechunk S3 URL without a bucket: {url!r}")
    elif not path:
        raise InvalidURLError(f"icechunk URL without a path: {url!r}")
    return _Location(kind, path, refs, params)


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidURLError(f"option {name!r} must be true or false, not {value!r}")


def s3_storage(bucket_prefix: str, options: Mapping[str, Any]) -> ic.Storage:
    """Build the icechunk storage of ``bucket/prefix`` from URL/storage options and the
    environment."""
    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise InvalidURLError(f"unknown icechunk S3 option(s) {unknown}")
    bucket, _, prefix = bucket_prefix.partition("/")
    env = os.environ
    endpoint = (
        options.get("endpoint_url")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or None
    )
    region = options.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    allow_http = _flag(
        "allow_http", options.get("allow_http", bool(endpoint and endpoint.startswith("http:")))
    )
    path_style = _flag("force_path_style", options.get("force_path_style", bool(endpoint)))
    kwargs: dict[str, Any] = {
        "bucket": bucket,
        "prefix": prefix.strip("/") or None,
        "region": region or None,
        "endpoint_url": endpoint,
        "allow_http": allow_http,
        "force_path_style": path_style,
    }
    key_id = options.get("access_key_id")
    secret = options.get("secret_access_key")
    token = options.get("session_token")
    if bool(key_id) != bool(secret):
        raise InvalidURLError("access_key_id and secret_access_key go together")
    if not key_id and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        key_id, secret = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        token = token or env.get("AWS_SESSION_TOKEN")
    if key_id:
        kwargs.update(access_key_id=key_id, secret_access_key=secret, session_token=token)
    elif _flag("anonymous", options.get("anonymous", False)):
        kwargs["anonymous"] = True
    else:
        kwargs["from_env"] = True
    try:
        return ic.s3_storage(**kwargs)
    except (ic.IcechunkError, ValueError, TypeError) as exc:
        raise InvalidURLError(f"bad icechunk S3 location s3://{bucket_prefix}: {exc}") from exc


# -- sessions ------------------------------------------------------------------------------


def _describe_conflicts(exc: BaseException) -> str:
    conflicts = getattr(exc, "conflicts", None) or []
    described = []
    for conflict in list(conflicts)[:10]:
        kind = getattr(conflict, "conflict_type", "?")
        described.append(f"{kind} at {getattr(conflict, 'path', '?')}")
    if len(conflicts) > 10:
        described.append(f"... {len(conflicts) - 10} more")
    return "; ".join(described) if described else str(exc).splitlines()[0]


class _ZarrStore(ic.IcechunkStore):
    """icechunk's zarr store, whose ``str()`` does not call into icechunk.

    zarr formats ``str(store)`` each time it opens or creates an array; icechunk answers
    that holding the GIL while it waits for the session, which a concurrent write of the
    same session holds while it waits for the GIL: the process hangs. Partitions are
    written with many arrays at once, so give zarr a name that costs nothing.
    """

    def __str__(self) -> str:
        return f"icechunk://session-{id(self._store):x}"

    def __repr__(self) -> str:
        return f"<icechunk store {self}>"

    def with_read_only(self, read_only: bool = False) -> _ZarrStore:
        new_store = _ZarrStore(store=self._store, read_only=read_only)
        new_store._is_open = False
        return new_store


def _zarr_store(session: ic.Session) -> _ZarrStore:
    return _ZarrStore(session.store._store)


class IcechunkSession(StoreSession):
    """One writable icechunk session: everything written through it is one commit."""

    store: IcechunkStore

    def __init__(self, store: IcechunkStore, session: ic.Session) -> None:
        super().__init__(store)
        self.session = session
        self._done = False
        #: Snapshot id of the commit, once committed (None when nothing changed).
        self.snapshot_id: str | None = None

    def zarr_store(self) -> Any:
        """Return the writable zarr store of the icechunk session."""
        if self._done:
            raise StoreError("this icechunk session is already committed or rolled back")
        return _zarr_store(self.session)

    async def commit(self, message: str) -> None:
        """Commit once, rebasing over concurrent commits that changed other nodes.

        A block that changed nothing commits nothing.

        Raises:
            ConflictError: If a concurrent commit changed the same nodes (nothing committed).
            StoreError: If the commit fails otherwise (nothing committed).
        """
        if self._done:
            raise StoreError("this icechunk session is already committed or rolled back")
        self._done = True
        if not self.session.has_uncommitted_changes:
            return
        where = f"branch {self.session.branch!r} of {self.store.root_uri}"
        try:
            self.snapshot_id = await self.session.commit_async(
                message,
                metadata={"zcollection": message},
                rebase_with=ic.ConflictDetector(),
                rebase_tries=self.store.rebase_tries,
            )
        except ic.ConflictError as exc:
            self._discard()
            raise ConflictError(
                f"{message!r} on {where} conflicts with a concurrent commit "
                f"({_describe_conflicts(exc)}); nothing was committed: reload and retry"
            ) from exc
        except ic.IcechunkError as exc:
            self._discard()
            raise StoreError(f"cannot commit {message!r} on {where}: {exc}") from exc
        self.store._remember(self.snapshot_id, self.session)

    async def rollback(self) -> None:
        """Discard every change of the session (nothing reaches the branch)."""
        if not self._done:
            self._done = True
            self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(ic.IcechunkError, ValueError):
            if not self.session.read_only:
                self.session.discard_changes()


# -- the store -----------------------------------------------------------------------------


class IcechunkStore(Store):
    """A collection in an icechunk repository: transactional, multi-writer.

    Args:
        repository: An ``icechunk.Repository``, an ``icechunk.Storage`` (the repository is
            opened, or created by the first write), an ``icechunk://`` / ``icechunk+s3://``
            URL or a local path.
        branch: Branch read and written (default ``main``).
        tag: Read the collection as it was at this tag (read-only).
        snapshot: Read the collection as it was at this snapshot id (read-only).
        read_only: Refuse writes.
        storage_options: S3 options (see the module documentation) for S3 URLs.
        config: ``icechunk.RepositoryConfig`` used to open or create the repository.
    """

    meta_files: MetaFiles = IcechunkMetaFiles()
    transactional = True
    #: How many times a commit is rebased over concurrent commits before giving up.
    rebase_tries: int = 100

    def __init__(
        self,
        repository: ic.Repository | ic.Storage | str | os.PathLike[str],
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot: str | None = None,
        read_only: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        config: ic.RepositoryConfig | None = None,
    ) -> None:
        self._repo: ic.Repository | None = None
        self._storage: ic.Storage | None = None
        self._config = config
        #: URL and storage options this store was built from (to pickle it)
        self._source: tuple[str, dict[str, Any]] | None = None
        refs: dict[str, str] = {}
        if isinstance(repository, ic.Repository):
            self._repo = repository
            self._uri = f"icechunk://<repository {id(repository):x}>"
        elif isinstance(repository, ic.Storage):
            self._storage = repository
            self._uri = f"icechunk://<storage {id(repository):x}>"
        elif isinstance(repository, (str, os.PathLike)):
            text = os.fspath(repository)
            location = parse_url(text) if "://" in text else _Location("local", text, {}, {})
            refs = location.refs
            self._source = (text, dict(storage_options or {}))
            if location.kind == "s3":
                options = {**location.options, **dict(storage_options or {})}
                self._storage = s3_storage(location.path, options)
                public = {k: str(v) for k, v in options.items() if k in _PUBLIC_S3_OPTIONS}
                query = f"?{urlencode(public, safe=':/')}" if public else ""
                self._uri = f"icechunk+s3://{location.path}{query}"
            else:
                if storage_options:
                    raise InvalidURLError(
                        f"storage options {sorted(storage_options)} do not apply to a local "
                        "icechunk repository"
                    )
                local = Path(location.path).expanduser().absolute()
                self._storage = ic.local_filesystem_storage(str(local))
                self._uri = f"icechunk://{quote(str(local))}"
        else:
            raise InvalidURLError(f"not an icechunk repository, storage or URL: {repository!r}")
        for name, value in (("branch", branch), ("tag", tag), ("snapshot", snapshot)):
            if value is not None:
                if name in refs and refs[name] != value:
                    raise InvalidURLError(f"{name} given both in the URL and as an argument")
                refs[name] = value
        if len(refs) > 1:
            raise InvalidURLError(
                f"name at most one of branch, tag or snapshot (got {', '.join(sorted(refs))})"
            )
        if any(not value for value in refs.values()):
            raise InvalidURLError("an empty branch, tag or snapshot name")
        self.tag = refs.get("tag")
        self.snapshot = refs.get("snapshot")
        self.branch: str | None = (
            None if self.tag or self.snapshot else refs.get("branch", DEFAULT_BRANCH)
        )
        # a tag or a snapshot is a version of the past: reading only
        self.read_only = read_only or self.branch is None
        self._lock = threading.Lock()
        self._reader: tuple[str, ic.Session] | None = None
        self._empty: zarr.storage.MemoryStore | None = None

    # -- description ----------------------------------------------------------------------
    @property
    def root_uri(self) -> str:
        """URI of the store (without credentials), naming the tag / snapshot / branch read."""
        ref = ""
        if self.tag is not None:
            ref = urlencode({"tag": self.tag})
        elif self.snapshot is not None:
            ref = urlencode({"snapshot": self.snapshot})
        elif self.branch != DEFAULT_BRANCH:
            ref = urlencode({"branch": self.branch})
        if not ref:
            return self._uri
        return f"{self._uri}{'&' if '?' in self._uri else '?'}{ref}"

    def __getstate__(self) -> dict[str, Any]:
        if self._repo is None and self._source is None:
            raise TypeError(
                "an IcechunkStore built from an icechunk.Storage pickles once its repository "
                "is open; build it from a URL or an icechunk.Repository instead"
            )
        state = dict(self.__dict__)
        state["_storage"] = None  # not picklable: rebuilt from the URL, or the repository is kept
        if self._source is not None:
            state["_repo"] = None
        for name in ("_lock", "_reader", "_empty"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._reader = None
        self._empty = None
        if self._source is not None:
            url, options = self._source
            self._storage = type(self)(url, storage_options=options)._storage

    # -- repository -----------------------------------------------------------------------
    def repository(self, *, create: bool = False) -> ic.Repository | None:
        """Return the repository (None when it does not exist and ``create`` is false)."""
        if self._repo is not None:
            return self._repo
        assert self._storage is not None
        with self._lock:
            if self._repo is not None:
                return self._repo
            try:
                if create:
                    self._repo = ic.Repository.open_or_create(self._storage, self._config)
                elif ic.Repository.exists(self._storage):
                    self._repo = ic.Repository.open(self._storage, self._config)
            except ic.IcechunkError as exc:
                raise StoreError(f"cannot open the icechunk repository {self._uri}: {exc}") from exc
            return self._repo

    async def _repository_async(self, *, create: bool) -> ic.Repository | None:
        if self._repo is not None:
            return self._repo
        assert self._storage is not None
        try:
            if create:
                repo = await ic.Repository.open_or_create_async(self._storage, self._config)
            elif await ic.Repository.exists_async(self._storage):
                repo = await ic.Repository.open_async(self._storage, self._config)
            else:
                return None
        except ic.IcechunkError as exc:
            raise StoreError(f"cannot open the icechunk repository {self._uri}: {exc}") from exc
        with self._lock:
            if self._repo is None:
                self._repo = repo
            return self._repo

    def tip(self) -> str | None:
        """Return the snapshot id this store reads (None when the repository does not exist)."""
        repo = self.repository()
        if repo is None:
            return None
        return self._resolve(repo)

    def _resolve(self, repo: ic.Repository) -> str:
        try:
            if self.snapshot is not None:
                return self.snapshot
            if self.tag is not None:
                return repo.lookup_tag(self.tag)
            assert self.branch is not None
            return repo.lookup_branch(self.branch)
        except ic.IcechunkError as exc:
            raise StoreError(f"cannot resolve {self.root_uri}: {exc}") from exc

    def _remember(self, snapshot_id: str | None, session: ic.Session) -> None:
        if snapshot_id is not None and self.branch is not None:
            with self._lock:
                self._reader = (snapshot_id, session)

    # -- reads ----------------------------------------------------------------------------
    def zarr_store(self) -> Any:
        """Return a read-only zarr store on the branch tip (or the pinned tag / snapshot).

        A repository that does not exist reads as an empty store (and is not created).
        """
        repo = self.repository()
        if repo is None:
            if self._empty is None:
                self._empty = zarr.storage.MemoryStore(read_only=True)
            return self._empty
        snapshot_id = self._resolve(repo)
        with self._lock:
            if self._reader is not None and self._reader[0] == snapshot_id:
                return _zarr_store(self._reader[1])
        try:
            session = repo.readonly_session(snapshot_id=snapshot_id)
        except ic.IcechunkError as exc:
            raise StoreError(f"cannot read snapshot {snapshot_id} of {self._uri}: {exc}") from exc
        with self._lock:
            self._reader = (snapshot_id, session)
        return _zarr_store(session)

    async def read_bytes_async(self, key: str) -> bytes | None:
        """Return the bytes at ``key`` (meta files such as ``_zcollection.json`` included)."""
        if is_meta_key(key):
            return await self.meta_files.read(self.zarr_store(), key)
        return await super().read_bytes_async(key)

    async def exists_async(self, key: str) -> bool:
        """Return whether ``key`` (a Zarr key or a meta file) exists."""
        if is_meta_key(key):
            return await self.meta_files.exists(self.zarr_store(), key)
        return await super().exists_async(key)

    # -- writes ---------------------------------------------------------------------------
    def writable_zarr_store(self) -> Any:
        """Writes on icechunk go through a session (``session_async``), never straight."""
        raise StoreError(f"writes on {self.root_uri} go through a store session")

    async def write_bytes_async(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` as one commit (a meta file goes to its meta group)."""
        self._check_writable()
        async with self.session_async(f"write {key}") as session:
            if is_meta_key(key):
                await session.write_meta_async(key, data)
            else:
                await session.write_bytes_async(key, data)

    async def delete_prefix_async(self, prefix: str) -> None:
        """Delete everything under ``prefix`` as one commit."""
        self._check_writable()
        async with self.session_async(f"delete {prefix.strip('/') or '/'}") as session:
            await session.delete_prefix_async(prefix)

    def _writable_branch(self) -> str:
        self._check_writable()
        if self.branch is None:  # pragma: no cover - a pinned store is read-only
            raise ReadOnlyError(f"store {self.root_uri} is read-only")
        return self.branch

    def new_session(self) -> IcechunkSession:
        """Return a writable session on the branch (the repository is created if needed)."""
        branch = self._writable_branch()
        repo = self.repository(create=True)
        assert repo is not None
        try:
            session = repo.writable_session(branch)
        except ic.IcechunkError as exc:
            raise StoreError(
                f"cannot start a write on branch {branch!r} of {self._uri}: {exc}"
            ) from exc
        return IcechunkSession(self, session)

    async def new_session_async(self) -> IcechunkSession:
        """Async twin of ``new_session``."""
        branch = self._writable_branch()
        repo = await self._repository_async(create=True)
        assert repo is not None
        try:
            session = await repo.writable_session_async(branch)
        except ic.IcechunkError as exc:
            raise StoreError(
                f"cannot start a write on branch {branch!r} of {self._uri}: {exc}"
            ) from exc
        return IcechunkSession(self, session)


def _from_url(url: str, read_only: bool, storage_options: dict[str, Any] | None) -> Store:
    return IcechunkStore(url, read_only=read_only, storage_options=storage_options)


register_scheme("icechunk", _from_url)
register_scheme("icechunk+s3", _from_url)

__all__ = ["IcechunkMetaFiles", "IcechunkSession", "IcechunkStore", "meta_group", "parse_url"]
