"""Server-rendered administration for platform, region and programme managers."""
