"""Tuners: the :class:`~manager.tuners.base.Tuner` contract, one module per built-in tuner, and the
:mod:`~manager.tuners.registry` that finds a tuner by name (or a user's by its class) and builds it.

Nothing is imported here, so that naming a tuner never loads another one (or torch).
"""
