"""An ENAS search, as NNI v1.9's examples/nas/enas/search.py runs one (macro or micro)."""

from argparse import ArgumentParser

import torch
import torch.nn as nn

import datasets
from enas_models import GeneralNetwork, MicroNetwork
from nni.algorithms.nas.pytorch import enas
from nni.nas.pytorch.callbacks import ArchitectureCheckpoint, LRSchedulerCallback
from utils import accuracy, reward_accuracy

if __name__ == "__main__":
    parser = ArgumentParser("enas")
    parser.add_argument("--batch-size", default=16, type=int)
    parser.add_argument("--log-frequency", default=2, type=int)
    parser.add_argument("--search-for", choices=["macro", "micro"], default="macro")
    parser.add_argument("--epochs", default=2, type=int)
    parser.add_argument("--visualization", default=False, action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    dataset_train, dataset_valid = datasets.get_dataset("cifar10")
    if args.search_for == "macro":
        model = GeneralNetwork()
        num_epochs = args.epochs
        mutator = None
    elif args.search_for == "micro":
        model = MicroNetwork()
        num_epochs = args.epochs
        mutator = enas.EnasMutator(model, tanh_constant=1.1, cell_exit_extra_step=True)
    else:
        raise AssertionError

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=1.0e-4)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_epochs, eta_min=0.001)

    trainer = enas.EnasTrainer(model,
                               loss=criterion,
                               metrics=accuracy,
                               reward_function=reward_accuracy,
                               optimizer=optimizer,
                               callbacks=[LRSchedulerCallback(lr_scheduler), ArchitectureCheckpoint("./checkpoints")],
                               batch_size=args.batch_size,
                               num_epochs=num_epochs,
                               dataset_train=dataset_train,
                               dataset_valid=dataset_valid,
                               log_frequency=args.log_frequency,
                               mutator=mutator,
                               workers=0,
                               child_steps=4,
                               mutator_steps=2,
                               mutator_steps_aggregate=2)
    if args.visualization:
        trainer.enable_visualization()
    trainer.train()
