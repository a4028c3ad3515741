"""Exporting a OneRoster bundle, one module per part of it (see :mod:`tenants.oneroster.exporter`)."""
