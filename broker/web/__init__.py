"""Pages for people: sign-in, the inbox, a notification, a child's chronology (``app.mount_web``)."""

from __future__ import annotations

from broker.web.app import PREFIX, WEB, create_web_app, mount_web
from broker.web.data import StoreWebData, WebData
from broker.web.people import Person, UserMap

__all__ = ["PREFIX", "WEB", "Person", "StoreWebData", "UserMap", "WebData", "create_web_app", "mount_web"]
