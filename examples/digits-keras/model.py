"""A small Keras CNN on scikit-learn's digits whose layers are left open for NAS
(the Keras twin of examples/digits; TensorFlow on the CPU).

    python model.py                                  # standalone: first candidates, trains, prints accuracy
    nasctl ss_gen --trial-command "python model.py"  # writes the search space and exits
    nasctl create --config config.yml                # one trial per architecture, through the daemon

Open decisions: ``conv1``, ``conv2``, ``conv3`` (which operation) and ``skip`` (whether a
residual connection carries conv1's output around conv2): the same keys and candidates as the
PyTorch example, so an architecture of one applies to the other.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf
from data import load_splits

import trials
from trials.nas.tensorflow import InputChoice, LayerChoice, get_and_apply_next_architecture

L = keras.layers


def conv_bn(channels: int, kernel: int, dilation: int = 1) -> keras.layers.Layer:
    """Conv, BatchNorm (PyTorch's momentum: Keras' 0.99 lags over 19 steps an epoch), ReLU."""
    return keras.Sequential(
        [
            L.Conv2D(channels, kernel, padding="same", dilation_rate=dilation, use_bias=False),
            L.BatchNormalization(momentum=0.9),
            L.ReLU(),
        ]
    )


def sep_conv(channels: int, kernel: int) -> keras.layers.Layer:
    """Depthwise then pointwise: a fraction of a full convolution's parameters."""
    return keras.Sequential(
        [
            L.DepthwiseConv2D(kernel, padding="same", use_bias=False),
            L.BatchNormalization(momentum=0.9),
            L.ReLU(),
            conv_bn(channels, 1),
        ]
    )


class DigitsNet(keras.Model):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.stem = conv_bn(c, 3)
        self.conv1 = LayerChoice(
            {
                "conv3x3": conv_bn(c, 3),
                "conv5x5": conv_bn(c, 5),
                "sepconv3x3": sep_conv(c, 3),
                "maxpool3x3": L.MaxPooling2D(3, strides=1, padding="same"),
            },
            key="conv1",
        )
        self.conv2 = LayerChoice(
            {
                "conv3x3": conv_bn(c, 3),
                "conv5x5": conv_bn(c, 5),
                "dilconv3x3": conv_bn(c, 3, dilation=2),
                "identity": L.Identity(),
            },
            key="conv2",
        )
        # Any subset of the listed outputs (here: conv1's or nothing) is added after conv2.
        self.skip = InputChoice(choose_from=["conv1"], n_chosen=None, key="skip")
        self.pool = L.MaxPooling2D(2)
        self.conv3 = LayerChoice(
            {
                "conv3x3": conv_bn(2 * c, 3),
                "sepconv3x3": keras.Sequential([sep_conv(c, 3), conv_bn(2 * c, 1)]),
                "conv1x1": conv_bn(2 * c, 1),
            },
            key="conv3",
        )
        self.head = L.Dense(10)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x1 = self.conv1(self.stem(x))
        x2 = self.conv2(x1)
        residual = self.skip([x1])
        if residual is not None:
            x2 = x2 + residual
        x3 = self.conv3(self.pool(x2))
        return self.head(keras.ops.mean(x3, axis=(1, 2)))


def compile_model(model: keras.Model, lr: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class ReportValidation(keras.callbacks.Callback):
    """Each epoch's validation accuracy goes to nasctl as an intermediate result."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.images, self.labels = images, labels
        self.last = 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.last = float(
            self.model.evaluate(self.images, self.labels, verbose=0, return_dict=True)["accuracy"]
        )
        trials.report_intermediate_result(self.last)
        print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, validation accuracy {self.last:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)  # trials run side by side: one core each
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)

    model = DigitsNet()
    arch = get_and_apply_next_architecture(model)  # under ss_gen this writes the space and exits
    print("architecture:", {key: value["_value"] for key, value in arch.items()}, flush=True)
    data = load_splits()
    compile_model(model, args.lr)
    report = ReportValidation(*data["val"])
    model.fit(*data["train"], batch_size=64, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[report])
    trials.report_final_result(report.last)
    print(f"final validation accuracy: {report.last:.4f}")


if __name__ == "__main__":
    main()
