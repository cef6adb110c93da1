"""Make ``zcollection_proto`` importable from its source root.

An editable install made while ``proto/zcollection_proto`` had no ``__init__.py`` maps it as
a namespace package; putting the source root first on ``sys.path`` makes the regular
package win either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"

if str(PROTO_ROOT) not in sys.path:
    sys.path.insert(0, str(PROTO_ROOT))
for _name in [
    m for m in sys.modules if m == "zcollection_proto" or m.startswith("zcollection_proto.")
]:
    if getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]
