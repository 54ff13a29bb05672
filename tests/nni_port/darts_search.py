"""A DARTS search, as NNI v1.9's examples/nas/darts/search.py runs one."""

import argparse
import json

import torch
import torch.nn as nn

import datasets
from darts_model import CNN
from nni.nas.pytorch.callbacks import ArchitectureCheckpoint, LRSchedulerCallback
from nni.algorithms.nas.pytorch.darts import DartsTrainer
from utils import accuracy

if __name__ == "__main__":
    parser = argparse.ArgumentParser("darts")
    parser.add_argument("--batch-size", default=16, type=int)
    parser.add_argument("--log-frequency", default=2, type=int)
    parser.add_argument("--epochs", default=2, type=int)
    parser.add_argument("--unrolled", default=False, action="store_true")
    parser.add_argument("--visualization", default=False, action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    dataset_train, dataset_valid = datasets.get_dataset("cifar10")

    model = CNN()
    criterion = nn.CrossEntropyLoss()

    optim = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3.0e-4)
    lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optim, args.epochs, eta_min=0.001)

    trainer = DartsTrainer(model,
                           loss=criterion,
                           metrics=lambda output, target: accuracy(output, target, topk=(1,)),
                           optimizer=optim,
                           num_epochs=args.epochs,
                           dataset_train=dataset_train,
                           dataset_valid=dataset_valid,
                           batch_size=args.batch_size,
                           workers=0,
                           log_frequency=args.log_frequency,
                           unrolled=args.unrolled,
                           callbacks=[LRSchedulerCallback(lr_scheduler), ArchitectureCheckpoint("./checkpoints")])
    if args.visualization:
        trainer.enable_visualization()
    trainer.train()
    trainer.export("final_architecture.json")
    print("exported:", json.dumps(json.load(open("final_architecture.json")), sort_keys=True))
