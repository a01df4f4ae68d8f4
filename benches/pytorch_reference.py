#!/usr/bin/env python3
"""The reference PyTorch program, timed the way lstm-mnist's `bench` and `train` are timed.

  compute   training and inference samples/s of nn.LSTM(28, 10, 2, batch_first) + nn.Linear(10, 10)
            (sizes from --config), data already in memory; prints what `bench --json` prints.
  epoch     the reference program as written: torchvision MNIST (ToTensor, Normalize(0.1307, 0.3081)),
            DataLoader batch 64 shuffled, SGD lr 0.01 momentum 0.5, cross-entropy; times each epoch's
            training pass and test pass and prints one JSON line per epoch.

Needs torch (and torchvision for `epoch`): pip install torch torchvision. Threads: --threads (default 2).
"""

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import torch
from torch import nn


class Net(nn.Module):
    """The reference network: the last layer's final hidden state -> Linear."""

    def __init__(self, input_size, hidden_size, num_layers, num_classes):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


def load_config(path):
    with open(path) as f:
        config = json.load(f)
    model, optimizer = config["model"], config["optimizer"]
    if model["cell"] != "lstm" or "Sgd" not in optimizer or config["data"]["sequence"] != "rows":
        sys.exit(f"{path}: this script reproduces LSTM + SGD on rows only")
    return config


def median_repeats(plan, batch_size, iteration):
    warmup, iterations, repeats = plan
    for i in range(warmup):
        iteration(i)
    figures = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(iterations):
            iteration(i)
        figures.append(iterations * batch_size / (time.perf_counter() - start))
    return {"batch_size": batch_size, "samples_per_s": statistics.median(figures), "repeats": figures}


def batches(count, batch_size, classes):
    return [(torch.randn(batch_size, 28, 28), torch.randint(0, classes, (batch_size,))) for _ in range(count)]


def compute(args, config):
    m, sgd = config["model"], config["optimizer"]["Sgd"]
    torch.manual_seed(config["seed"])
    model = Net(m["input_size"], m["hidden_size"], m["num_layers"], m["num_classes"])
    optimizer = torch.optim.SGD(model.parameters(), lr=sgd["learning_rate"], momentum=sgd["momentum"],
                                dampening=sgd["dampening"], nesterov=sgd["nesterov"],
                                weight_decay=sgd["weight_decay"])
    criterion = nn.CrossEntropyLoss()
    batch_size = config["batch_size"]
    train_batches = batches(8, batch_size, m["num_classes"])

    def train_step(i):
        x, y = train_batches[i % len(train_batches)]
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()

    model.train()
    train = median_repeats((max(args.train_steps // 10, 5), args.train_steps, args.repeats), batch_size, train_step)

    model.eval()
    infer = []
    with torch.inference_mode():
        for b in args.infer_batch:
            infer_batches = batches(8, b, m["num_classes"])
            iterations = -(-args.infer_samples // b)

            def infer_step(i, infer_batches=infer_batches):
                model(infer_batches[i % len(infer_batches)][0]).numpy()

            infer.append(median_repeats((max(iterations // 10, 2), iterations, args.repeats), b, infer_step))
    print(json.dumps({
        "framework": "pytorch",
        "backend": f"torch {torch.__version__} CPU",
        "config": args.config,
        "threads": torch.get_num_threads(),
        "train": train,
        "infer": infer,
    }))


def mnist_root(data_dir):
    """torchvision's MNIST layout (MNIST/raw/<name>, uncompressed) in a temporary directory."""
    root = tempfile.mkdtemp(prefix="mnist-torchvision-")
    raw = os.path.join(root, "MNIST", "raw")
    os.makedirs(raw)
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]:
        plain, packed = os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")
        if os.path.exists(plain):
            shutil.copyfile(plain, os.path.join(raw, name))
        elif os.path.exists(packed):
            with gzip.open(packed, "rb") as src, open(os.path.join(raw, name), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            sys.exit(f"{data_dir}: no {name} or {name}.gz")
    return root


def epoch(args, config):
    from torchvision import datasets, transforms

    m, sgd = config["model"], config["optimizer"]["Sgd"]
    torch.manual_seed(config["seed"])
    root = mnist_root(args.data_dir)
    try:
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        train_set = datasets.MNIST(root, train=True, download=False, transform=transform)
        test_set = datasets.MNIST(root, train=False, download=False, transform=transform)
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=config["batch_size"], shuffle=True)
        test_loader = torch.utils.data.DataLoader(test_set, batch_size=config["eval_batch_size"], shuffle=False)
        model = Net(m["input_size"], m["hidden_size"], m["num_layers"], m["num_classes"])
        optimizer = torch.optim.SGD(model.parameters(), lr=sgd["learning_rate"], momentum=sgd["momentum"])
        criterion = nn.CrossEntropyLoss()
        for e in range(1, args.epochs + 1):
            start = time.perf_counter()
            model.train()
            for images, labels in train_loader:
                optimizer.zero_grad()
                loss = criterion(model(images.view(-1, 28, 28)), labels)
                loss.backward()
                optimizer.step()
            trained = time.perf_counter()
            model.eval()
            correct = 0
            with torch.no_grad():
                for images, labels in test_loader:
                    correct += (model(images.view(-1, 28, 28)).argmax(1) == labels).sum().item()
            tested = time.perf_counter()
            print(json.dumps({
                "framework": "pytorch", "epoch": e, "train_s": trained - start, "test_s": tested - trained,
                "epoch_s": tested - start, "test_accuracy": 100.0 * correct / len(test_set),
                "threads": torch.get_num_threads(),
            }), flush=True)
    finally:
        shutil.rmtree(root)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["compute", "epoch"])
    parser.add_argument("--config", default="configs/seed.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--infer-batch", default="64,1000")
    parser.add_argument("--infer-samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"))
    args = parser.parse_args()
    args.infer_batch = [int(b) for b in args.infer_batch.split(",")]
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.mode == "compute":
        compute(args, config)
    else:
        if not args.data_dir:
            sys.exit("epoch needs MNIST: --data-dir DIR or MNIST_DIR")
        epoch(args, config)


if __name__ == "__main__":
    main()
