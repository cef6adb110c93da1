"""ViewReference: where a view's base collection lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ViewReference:
    """Pointer to a view's underlying base collection.

    ``uri`` is anything ``zcollection.open_collection`` accepts (a path or a store URL).
    """

    uri: str

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str):
            raise TypeError(f"a view reference URI must be a string, not {type(self.uri).__name__}")
        if not self.uri.strip():
            raise ValueError("a view reference URI must not be empty")

    def to_json(self) -> dict[str, Any]:
        """Return the reference as a JSON-serialisable dictionary."""
        return {"uri": self.uri}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> ViewReference:
        """Build a ViewReference from its JSON payload.

        Raises:
            ValueError: If ``payload`` is not an object with a string ``uri``.
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("uri"), str):
            raise ValueError(f"invalid view reference JSON: {payload!r}")
        return cls(payload["uri"])

    @classmethod
    def coerce(cls, value: ViewReference | str) -> ViewReference:
        """Return ``value`` as a ViewReference (a string is taken as the URI)."""
        if isinstance(value, ViewReference):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError(
            f"reference must be a ViewReference or a URI string, not {type(value).__name__}"
        )


__all__ = ["ViewReference"]
