"""Importing a OneRoster bundle, one module per file of the bundle (see :mod:`tenants.oneroster.importer`)."""
