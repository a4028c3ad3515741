"""OneRoster 1.2 CSV bundles (with a tolerant reading of 1.1): validation, import and export."""
