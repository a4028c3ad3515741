"""The notification centre: one service every module sends through (in-app inbox, e-mail, SMS).

* :mod:`core.notifications.kinds` — kinds declared by plugins (``madrasa_notification_kinds``);
* :mod:`core.notifications.service` — :func:`~core.notifications.service.notify` (the facade plugins call) and
  the expansion of a batch into one notification per recipient, in the recipient's language;
* :mod:`core.notifications.delivery` — the ``notifications.deliver`` job: e-mail and SMS once each, retried
  with backoff (:mod:`core.notifications.retry`), quiet hours, daily digests, a per-recipient rate limit;
* :mod:`core.notifications.prefs` — a person's preferences and a school's or region's rules;
* :mod:`core.notifications.inbox` — reading and marking one's notifications, a tenant's statistics;
* :mod:`core.notifications.api` and :mod:`core.notifications.pages` — the JSON API and the portal pages;
* :mod:`core.notifications.tables` — the tables (migration ``core.m0009_notifications``).
"""
