"""The example plugin's migrations."""
