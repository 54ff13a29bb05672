"""Reliability tests: crash recovery, faults, bad input, security and load (all marked slow)."""
