"""Proof under attack and faults: brute-force throttle, server limits, fuzzing, database outage, bench smoke."""
