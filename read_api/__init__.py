"""jobstream read_api."""
