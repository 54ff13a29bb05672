"""Assessors: decide from a running trial's intermediate results whether to stop it early."""
