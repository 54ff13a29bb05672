"""``nni.nas``, for NNI code that imports ``pytorch`` from it (``from nni.nas import pytorch as
nas``, as NNI's DARTS example model does): ``pytorch`` here is :mod:`trials.nas.nni`."""

from trials.nas import nni as pytorch

__all__ = ["pytorch"]
