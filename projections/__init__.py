"""jobstream projections."""
