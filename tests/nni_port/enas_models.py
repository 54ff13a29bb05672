"""Small ENAS macro and micro search spaces, written as NNI's examples/nas/enas/{macro,micro}.py
write theirs (auto-keyed choices inside keyed scopes, any-subset skips, NO_KEY inputs, an
auxiliary head)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from nni.nas.pytorch import mutables


def conv(c, k):
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c, affine=False), nn.ReLU())


class ENASLayer(mutables.MutableScope):
    def __init__(self, key, prev_labels, channels):
        super().__init__(key)
        self.mutable = mutables.LayerChoice([conv(channels, 3), conv(channels, 5), nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1)])
        if len(prev_labels) > 0:
            self.skipconnect = mutables.InputChoice(choose_from=prev_labels, n_chosen=None)
        else:
            self.skipconnect = None
        self.batch_norm = nn.BatchNorm2d(channels, affine=False)

    def forward(self, prev_layers):
        out = self.mutable(prev_layers[-1])
        if self.skipconnect is not None:
            connection = self.skipconnect(prev_layers[:-1])
            if connection is not None:
                out = out + connection
        return self.batch_norm(out)


class GeneralNetwork(nn.Module):
    def __init__(self, num_layers=3, channels=8, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.layers = nn.ModuleList()
        labels = []
        for layer_id in range(num_layers):
            labels.append("layer_{}".format(layer_id))
            self.layers.append(ENASLayer(labels[-1], labels[:-1], channels))
        self.dense = nn.Linear(channels, num_classes)

    def forward(self, x):
        cur = self.stem(x)
        layers = [cur]
        for layer in self.layers:
            cur = layer(layers)
            layers.append(cur)
        return self.dense(torch.flatten(F.adaptive_avg_pool2d(cur, 1), 1))


class Node(mutables.MutableScope):
    def __init__(self, node_id, prev_labels, channels):
        super().__init__(node_id)
        self.input_1 = mutables.InputChoice(choose_from=prev_labels, n_chosen=1, return_mask=True, key=node_id + "_x")
        self.op_1 = mutables.LayerChoice([conv(channels, 3), nn.MaxPool2d(3, 1, 1), nn.Identity()], key=node_id + "_x_op")
        self.input_2 = mutables.InputChoice(choose_from=prev_labels, n_chosen=1, return_mask=True, key=node_id + "_y")
        self.op_2 = mutables.LayerChoice([conv(channels, 3), nn.MaxPool2d(3, 1, 1), nn.Identity()], key=node_id + "_y_op")

    def forward(self, prev_layers):
        out_1, mask_1 = self.input_1(prev_layers)
        out_2, mask_2 = self.input_2(prev_layers)
        return self.op_1(out_1) + self.op_2(out_2), mask_1 | mask_2


class Cell(nn.Module):
    def __init__(self, num_nodes, channels, cell_type):
        super().__init__()
        self.nodes = nn.ModuleList()
        node_labels = [mutables.InputChoice.NO_KEY, mutables.InputChoice.NO_KEY]
        for i in range(num_nodes):
            node_labels.append("{}_node_{}".format(cell_type, i))
            self.nodes.append(Node(node_labels[-1], node_labels[:-1], channels))

    def forward(self, prev_layers):
        prev_nodes_out = list(prev_layers)
        for node in self.nodes:
            out, _ = node(prev_nodes_out)
            prev_nodes_out.append(out)
        return sum(prev_nodes_out[2:]) / len(self.nodes)


class MicroNetwork(nn.Module):
    def __init__(self, num_cells=2, num_nodes=2, channels=8, num_classes=10, use_aux_heads=True):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.ModuleList()
        for i in range(num_cells):
            self.cells.append(Cell(num_nodes, channels, "reduce" if i % 2 else "normal"))
        self.use_aux_heads = use_aux_heads
        if use_aux_heads:
            self.aux_head = nn.Linear(channels, num_classes)
        self.dense = nn.Linear(channels, num_classes)

    def forward(self, x):
        prev = cur = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            prev, cur = cur, cell([prev, cur])
            if i == 0 and self.use_aux_heads and self.training:
                aux_logits = self.aux_head(torch.flatten(F.adaptive_avg_pool2d(cur, 1), 1))
        logits = self.dense(torch.flatten(F.adaptive_avg_pool2d(cur, 1), 1))
        if aux_logits is not None:
            return logits, aux_logits
        return logits
