"""jobstream invoicer."""
