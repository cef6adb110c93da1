"""The command-line server caps glibc's malloc arenas (bounded memory of large puts)."""

from __future__ import annotations

import platform

import pytest
from zcollection_server.allocator import limit_malloc_arenas
from zcollection_server.settings import ServerSettings, SettingsError


def test_zero_leaves_the_allocator_alone() -> None:
    assert limit_malloc_arenas(0) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_glibc_accepts_the_cap() -> None:
    assert limit_malloc_arenas(2) is True


def test_settings_refuse_negative_values() -> None:
    for field in ("malloc_arenas", "put_buffer_bytes"):
        settings = ServerSettings(root="/tmp", **{field: -1})
        with pytest.raises(SettingsError, match=field):
            settings.validate()
