"""``python -m notifier``: run the notifier (``jobstream run notifier`` does the same)."""

from notifier.service import main

main()
