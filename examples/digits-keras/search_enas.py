"""One-shot search of the Keras digits CNN with ENAS: one shared-weight super-net, minutes on a CPU.

python search_enas.py --epochs 10 --log-dir enas-log   # writes enas-log/architecture.json
nasctl view-nas --logdir enas-log                      # the search, in the browser
python retrain.py --arch enas-log/architecture.json    # train the exported architecture
"""

from __future__ import annotations

import argparse
import json

import keras
from data import batches, load_splits
from model import DigitsNet

from trials.nas.tensorflow.enas import EnasTrainer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--controller-steps", type=int, default=30)
    parser.add_argument("--log-dir", default="enas-log")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_splits()
    trainer = EnasTrainer(
        DigitsNet(args.channels),
        train_data=batches(*data["train"], 64, args.seed),
        valid_data=batches(*data["val"], 100, args.seed),
        num_epochs=args.epochs,
        optimizer=keras.optimizers.Adam(3e-3),
        controller_steps=args.controller_steps,
        log_dir=args.log_dir,
        seed=args.seed,
    )
    architecture = trainer.fit()
    print("exported:", json.dumps(architecture))


if __name__ == "__main__":
    main()
