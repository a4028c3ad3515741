"""Small helpers for plugin authors."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.response import Template

from core.context import Ctx
from core.rendering import page


def module_home(module: str, label: str, permission: str, features: list[str]) -> Any:
    """A module's portal landing page at ``/<module>/`` listing its features.

    Built-in modules whose features are still being written use it so their menu entry leads
    somewhere honest; the page says which features are not available yet.
    """

    @get(f"/{module}/", opt={"permission": permission}, include_in_schema=False, name=f"{module}-home")
    async def handler(ctx: Ctx) -> Template:
        return page(ctx, "module_home.html", module=module, label=label, features=features)

    return handler
