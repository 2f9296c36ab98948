"""Who is calling: an authenticated organisation acting in one role.

The gateway's credentials (``broker.gateway.auth``) make ``Caller``s; the inbox,
the chronology and the web pages take them through an ``Authenticate``
function, so none of them imports the gateway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = ["Authenticate", "Caller"]


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated organisation acting in one role."""

    org_id: str
    role: str


# The ``Authorization`` header (or None) to its caller; raises ``Unauthenticated``.
Authenticate = Callable[[str | None], Caller]
