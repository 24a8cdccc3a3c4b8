"""What one resource kind does within a run (HLS, MP4, image) and the run's ledger they all write to."""
