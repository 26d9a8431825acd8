"""jobstream services."""
