"""Retraining an exported architecture, as NNI v1.9's examples/nas/darts/retrain.py does."""

import argparse

import torch
import torch.nn as nn

import datasets
from darts_model import CNN
from nni.nas.pytorch.fixed import apply_fixed_architecture
from nni.nas.pytorch.utils import AverageMeterGroup
from utils import accuracy

if __name__ == "__main__":
    parser = argparse.ArgumentParser("darts")
    parser.add_argument("--arc-checkpoint", default="./checkpoints/epoch_1.json")
    parser.add_argument("--epochs", default=1, type=int)
    args = parser.parse_args()

    dataset_train, dataset_valid = datasets.get_dataset("cifar10")
    model = CNN()
    apply_fixed_architecture(model, args.arc_checkpoint)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3.0e-4)
    train_loader = torch.utils.data.DataLoader(dataset_train, batch_size=16, shuffle=True)
    for epoch in range(args.epochs):
        meters = AverageMeterGroup()
        model.train()
        for step, (x, y) in enumerate(train_loader):
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(logits, y)
            loss.backward()
            optimizer.step()
            metrics = accuracy(logits, y)
            metrics["loss"] = loss.item()
            meters.update(metrics)
        print("Train: [{:3d}/{}] Final Prec@1 {:.4%} loss {:.4f}".format(epoch + 1, args.epochs, meters.acc1.avg, meters.loss.avg))
    print("retrained parameters:", sum(p.numel() for p in model.parameters()))
