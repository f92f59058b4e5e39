"""The listener's web inspector at ``/_paymobctl/``: live events, one event in full, replay.

Loopback only (:func:`paymobctl.web.is_local`): through a tunnel every inspector path is an
ordinary unknown path of the receiver (stored, answered 404). It reads the store; it adds
nothing to the receiver's hot path: live rows come from polling the events table by id.
"""

from __future__ import annotations

from paymobctl.inspector.app import PATH, create_inspector

__all__ = ["PATH", "create_inspector"]
