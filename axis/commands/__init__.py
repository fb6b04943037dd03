"""Click command groups of the ``axis`` CLI, one module per concept."""
