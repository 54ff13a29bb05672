"""SPOS supernet training, as NNI v1.9's examples/nas/spos/supernet.py runs it, then loading
the saved weights and a multi-hot architecture the way its tester and retraining scripts do."""

import argparse
import json
import os

import torch
import torch.nn as nn

import datasets
from nni.algorithms.nas.pytorch.spos import SPOSSupernetTrainer, SPOSSupernetTrainingMutator
from nni.nas.pytorch.callbacks import LRSchedulerCallback, ModelCheckpoint
from nni.nas.pytorch.fixed import apply_fixed_architecture
from spos_model import OneShotNet
from utils import accuracy

if __name__ == "__main__":
    parser = argparse.ArgumentParser("SPOS Supernet Training")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--log-frequency", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = OneShotNet()
    flops_func = model.get_candidate_flops
    flops_lb, flops_ub = 1.0e6, 2.0e6
    mutator = SPOSSupernetTrainingMutator(model, flops_func=flops_func, flops_lb=flops_lb, flops_ub=flops_ub)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=4e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (1.0 - step / args.epochs) if step <= args.epochs else 0, last_epoch=-1)
    dataset_train, dataset_valid = datasets.get_dataset("cifar10")
    train_loader = torch.utils.data.DataLoader(dataset_train, batch_size=args.batch_size, shuffle=True)
    valid_loader = torch.utils.data.DataLoader(dataset_valid, batch_size=args.batch_size)

    trainer = SPOSSupernetTrainer(model, criterion, accuracy, optimizer,
                                  args.epochs, train_loader, valid_loader,
                                  mutator=mutator, batch_size=args.batch_size,
                                  log_frequency=args.log_frequency, workers=0,
                                  callbacks=[LRSchedulerCallback(scheduler),
                                             ModelCheckpoint("./checkpoints")])
    trainer.train()

    # the tester and retraining steps: a fresh model takes the saved state dict and a
    # multi-hot architecture such as NNI's shipped architecture_final.json
    tester = OneShotNet()
    tester.load_state_dict(torch.load(os.path.join("./checkpoints", "epoch_{}.pth.tar".format(args.epochs - 1))))
    final = {key: [i == 1 for i in range(4)] for key in tester._parsed_flops if key != "fixed"}
    with open("architecture_final.json", "w") as f:
        json.dump(final, f)
    retrain = OneShotNet()
    apply_fixed_architecture(retrain, "architecture_final.json")
    print("candidate flops:", flops_func({k: torch.tensor(v) for k, v in final.items()}))
    print("retrain output:", tuple(retrain(torch.zeros(2, 3, 16, 16)).shape))
