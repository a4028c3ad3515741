"""Every route of the notification centre (API and portal), and the registration of its delivery job."""

from __future__ import annotations

from core.notifications.api import API_ROUTES
from core.notifications.delivery import register
from core.notifications.pages import PAGE_ROUTES

register()

NOTIFICATION_ROUTES = [*API_ROUTES, *PAGE_ROUTES]
