"""``madrasa serve`` with the school's clock pinned to one day (for the attendance benchmarks).

Same application, settings (``MADRASA_*``) and uvicorn options as ``madrasa serve``; the only difference is
``services.clock``, a :class:`core.clock.FixedClock` at ``--day`` (10:00 in Africa/Casablanca), so the
benchmark's registers are "today" whatever the date it runs on.

    .venv/bin/python benchmarks/attendance_server.py --day 2026-11-16 --port 8000
"""

from __future__ import annotations

import argparse
import gc
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Serve the app on one uvicorn worker with a fixed clock."""
    import uvicorn

    from core.app import build_services, create_app
    from core.clock import FixedClock
    from core.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day", type=date.fromisoformat, required=True)
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    settings = load_settings()
    services = build_services(settings)
    services.clock = FixedClock(args.day)
    app = create_app(settings, services=services)
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=1,
        log_config=None,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
