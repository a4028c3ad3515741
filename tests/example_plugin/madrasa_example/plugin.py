"""An example third-party plugin: a route, a permission, a menu item, a card, an event handler, a command."""

from __future__ import annotations

import argparse
from typing import Any

from litestar import get

from core.context import Ctx
from core.events import Event
from core.hookspecs import hookimpl
from core.permissions import Permission
from core.plugins import DashboardCard, MenuItem, PluginInfo

#: Events received, for the tests to inspect.
RECEIVED: list[Event] = []


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """The example module, on by default."""
    return PluginInfo(name="example", label="Example", version="0.1.0", description="Example third-party plugin")


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """One permission held by school staff."""
    return [Permission("example.view", "See the example", frozenset({"teacher", "school_director"}))]


@get("/api/v1/example/hello", opt={"permission": "example.view"})
async def hello(ctx: Ctx) -> dict[str, Any]:
    """Say hello from the tenant."""
    assert ctx.tenant is not None
    return {"hello": ctx.tenant.slug}


@hookimpl
def madrasa_routes() -> list[Any]:
    """One API route."""
    return [hello]


@hookimpl
def madrasa_menu_items(ctx: Ctx) -> list[MenuItem]:
    """A menu entry."""
    return [MenuItem(label="Example", url="/api/v1/example/hello", order=99)]


@hookimpl
async def madrasa_dashboard_cards(ctx: Ctx) -> list[DashboardCard]:
    """An awaitable contribution, to show the host awaits hook results."""
    return [DashboardCard(title="Example card", body=f"for {ctx.tenant.slug if ctx.tenant else '-'}")]


@hookimpl
def madrasa_handle_event(event: Event) -> None:
    """Record events."""
    RECEIVED.append(event)


@hookimpl
def madrasa_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """``madrasa example-hello``."""
    parser = subparsers.add_parser("example-hello", help="print a greeting")
    parser.set_defaults(func=lambda args: print("hello from the example plugin") or 0)
