"""The read-only web dashboard (`tracker ui`)."""
