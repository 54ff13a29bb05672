"""One-shot NAS: train one super-net in this process and export the architecture it prefers.

    from trials.nas.oneshot import DartsTrainer
    trainer = DartsTrainer(model, train_data=train_half, valid_data=other_half, num_epochs=50,
                           log_dir="search-log")
    architecture = trainer.fit()          # also written to search-log/architecture.json
    # later, for retraining: apply_fixed_architecture(fresh_model, "search-log/architecture.json")

Also ``PdartsTrainer`` (stages of a deepening network), ``CdartsTrainer`` (a search and an
evaluation network), ``EnasTrainer`` and ``SposTrainer``; ``TensorBoardCallback`` logs any of them.
The trainers drive the same ``LayerChoice``/``InputChoice`` modules as classic NAS. Which
choices each one supports is in README.md ("One-shot NAS"); anything else is refused when
the trainer is built, with the choice's key in the message.
"""

from trials.nas.oneshot.base import OneShotTrainer, UnsupportedChoiceError, accuracy, cross_entropy
from trials.nas.oneshot.callbacks import Callback, ProgressPrinter
from trials.nas.oneshot.cdarts import CdartsTrainer
from trials.nas.oneshot.choices import ChoiceGroup, bind_choices
from trials.nas.oneshot.cost import Cost, measure
from trials.nas.oneshot.darts import DartsTrainer
from trials.nas.oneshot.enas import Controller, EnasTrainer
from trials.nas.oneshot.graph import build_graph
from trials.nas.oneshot.latency import LatencyTable, measure_latency
from trials.nas.oneshot.pdarts import PdartsTrainer
from trials.nas.oneshot.proxyless import ProxylessTrainer
from trials.nas.oneshot.spos import SposTrainer, recalibrate_batchnorm
from trials.nas.oneshot.tensorboard import TensorBoardCallback  # imports TensorBoard only when built
from trials.searchlog import SearchLog

__all__ = [
    "Callback",
    "CdartsTrainer",
    "ChoiceGroup",
    "Controller",
    "Cost",
    "DartsTrainer",
    "EnasTrainer",
    "LatencyTable",
    "OneShotTrainer",
    "PdartsTrainer",
    "ProgressPrinter",
    "ProxylessTrainer",
    "SearchLog",
    "SposTrainer",
    "TensorBoardCallback",
    "UnsupportedChoiceError",
    "accuracy",
    "bind_choices",
    "build_graph",
    "cross_entropy",
    "measure",
    "measure_latency",
    "recalibrate_batchnorm",
]
