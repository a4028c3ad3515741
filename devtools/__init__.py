"""Development tooling shipped beside the product: the realistic-data generator (``devtools.generator``)."""
