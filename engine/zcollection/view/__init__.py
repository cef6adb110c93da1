"""Views: extra variables overlaid on a base collection without copying its data.

A view lives in a store of its own (``_zcollection_view.json`` plus one Zarr array per view
variable at each partition path of the base) and shares the base's partitioning.
"""

from .api import create_view, create_view_async, open_view, open_view_async
from .reference import ViewReference
from .view import View

__all__ = [
    "View",
    "ViewReference",
    "create_view",
    "create_view_async",
    "open_view",
    "open_view_async",
]
