"""Ready-made search spaces: the cells NNI's zoo documents and networks built from them.

    from trials.nas.zoo import DartsNetwork
    model = DartsNetwork(in_channels=3, channels=16, n_classes=10, n_layers=8)

Every cell takes NNI's constructor arguments. NNI gives all stacked cells of a kind the same
keys (one architecture shared by every cell); ``key_prefix`` on a cell, or
``shared_keys=False`` on a network, gives each cell its own decisions instead.
"""

from trials.nas.zoo.darts import DARTS_OPS, DartsCell, DartsNetwork
from trials.nas.zoo.enas import (
    MACRO_OPS,
    MICRO_OPS,
    ENASMacroGeneralModel,
    ENASMacroLayer,
    ENASMicroLayer,
    ENASMicroNetwork,
)
from trials.nas.zoo.nasbench201 import NB201_OPS, NASBench201Cell, NASBench201Network
from trials.nas.zoo.proxylessnas import MBConv, ProxylessBlock, ProxylessNASNetwork
from trials.nas.zoo.textnas import TEXTNAS_OPS, MaskedBatchNorm1d, TextNASLayer, TextNASNetwork

__all__ = [
    "DARTS_OPS",
    "MACRO_OPS",
    "MICRO_OPS",
    "NB201_OPS",
    "TEXTNAS_OPS",
    "DartsCell",
    "DartsNetwork",
    "ENASMacroGeneralModel",
    "ENASMacroLayer",
    "ENASMicroLayer",
    "ENASMicroNetwork",
    "MBConv",
    "MaskedBatchNorm1d",
    "NASBench201Cell",
    "NASBench201Network",
    "ProxylessBlock",
    "ProxylessNASNetwork",
    "TextNASLayer",
    "TextNASNetwork",
]
