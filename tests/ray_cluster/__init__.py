"""Tests on a real multi-node Ray cluster, run inside a network namespace (see conftest.py)."""
