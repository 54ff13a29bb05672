"""Assessors: decide from a running trial's intermediate results whether to stop it early.

The :class:`~manager.assessors.base.Assessor` contract (NNI's), one module per built-in
(``medianstop``, ``curvefitting``, ``asha``), and the :mod:`~manager.assessors.registry` that finds
one by name (or a user's by its class) and builds it. Nothing is imported here, so naming an
assessor loads neither another one nor numpy and scipy.
"""
