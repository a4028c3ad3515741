"""Tenant management: the tree, programmes, module enablement, people and memberships."""
