"""jobstream notifier."""
