"""open_view / create_view: views by URL, the base opened from the view's reference."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .._sync import run_sync
from ..collection import Collection
from ..schema import VariableSchema
from ..store import Store, open_store
from .reference import ViewReference
from .view import View


async def open_view_async(
    path: str | os.PathLike[str] | Store,
    *,
    base: Collection | None = None,
    read_only: bool = False,
) -> View:
    """Open the view at ``path``; without ``base``, open its base (read-only) from the reference."""
    store = open_store(path, read_only=read_only)
    if base is None:
        from ..api import open_collection_async

        doc = await View.read_config_async(store)
        base = await open_collection_async(doc.reference.uri, mode="r")
    return await View.open_async(store, base=base, read_only=read_only)


def open_view(
    path: str | os.PathLike[str] | Store,
    *,
    base: Collection | None = None,
    read_only: bool = False,
) -> View:
    """Open the view at ``path`` (a store URL, a path or a Store).

    Without ``base``, the base collection is opened read-only from the view's reference URI.

    Raises:
        CollectionNotFoundError: If there is no view at ``path`` or no collection at its
            reference.
    """
    return run_sync(open_view_async(path, base=base, read_only=read_only))


async def create_view_async(
    path: str | os.PathLike[str] | Store,
    *,
    base: Collection,
    variables: Iterable[VariableSchema],
    reference: ViewReference | str | None = None,
    overwrite: bool = False,
) -> View:
    """Create a view at ``path``; ``reference`` defaults to the base store's URI."""
    store = open_store(path)
    ref = reference if reference is not None else base.store.root_uri
    return await View.create_async(
        store, base=base, variables=variables, reference=ref, overwrite=overwrite
    )


def create_view(
    path: str | os.PathLike[str] | Store,
    *,
    base: Collection,
    variables: Iterable[VariableSchema],
    reference: ViewReference | str | None = None,
    overwrite: bool = False,
) -> View:
    """Create a view at ``path`` (a store URL, a path or a Store) overlaying ``base``.

    ``reference`` defaults to the URI of the base's store.

    Raises:
        CollectionExistsError: If a view exists at ``path`` and ``overwrite`` is False.
    """
    return run_sync(
        create_view_async(
            path, base=base, variables=variables, reference=reference, overwrite=overwrite
        )
    )


__all__ = ["create_view", "create_view_async", "open_view", "open_view_async"]
