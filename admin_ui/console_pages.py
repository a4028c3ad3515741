"""The administration console's pages: home, tenant tree, module switches, programmes, branding, lifecycle, people."""

from __future__ import annotations

from typing import Any

from admin_ui.branding_pages import ROUTES as BRANDING
from admin_ui.lifecycle_pages import ROUTES as LIFECYCLE
from admin_ui.module_pages import ROUTES as MODULES
from admin_ui.people_pages import ROUTES as PEOPLE
from admin_ui.programme_pages import ROUTES as PROGRAMMES
from admin_ui.tree_pages import ROUTES as TREE

ROUTES: list[Any] = [*TREE, *PROGRAMMES, *BRANDING, *LIFECYCLE, *MODULES, *PEOPLE]
