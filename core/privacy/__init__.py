"""Personal data under Morocco's law 09-08: the right of access, retention periods, bulk exports.

* :mod:`core.privacy.export` — "my data": everything held about a person or a pupil as a zip, made by the
  ``privacy.export`` job from core's own sections and the ``madrasa_personal_data`` hook of every plugin;
* :mod:`core.privacy.api` — its API (``/api/v1/me/data-export…``) and portal page (``/my-data``);
* :mod:`core.privacy.retention` — a region's retention periods and the daily ``privacy.purge`` job
  (also ``madrasa purge``), plugins purging their own rows through ``madrasa_retention_purge``;
* :mod:`core.privacy.bulk` — every route marked ``opt={"bulk_export": kind}`` is audited and limited per
  account and hour, in one place (the access middleware).
"""
