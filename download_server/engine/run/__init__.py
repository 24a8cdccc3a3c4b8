"""One run of one task, from load to its end state."""
