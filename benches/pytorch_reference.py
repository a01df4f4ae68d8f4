#!/usr/bin/env python3
"""The reference PyTorch program, timed the way lstm-mnist's `bench` and `train` are timed.

  compute   training and inference samples/s of the config's model (nn.LSTM / nn.GRU / nn.RNN,
            batch_first, the last layer's final hidden state -> nn.Linear), its optimizer (SGD, Adam
            or RMSprop) and gradient clipping, data already in memory; prints what `bench --json`
            prints. The reference program is configs/seed.json.
  sgemm     the machine's matrix-product rate: GFLOP/s of `a @ b` (float32, --threads threads) on
            square products of 512, 1024 and 2048 and on [1000 x 64] x [64 x 256] (one step of a
            784-step LSTM of hidden 64 at batch 1000); prints one JSON line.
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


CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
# (steps, features) of each sequence mode of a 28 x 28 image.
SHAPES = {"rows": (28, 28), "pixels": (784, 1), "permuted_pixels": (784, 1)}


class Net(nn.Module):
    """The reference network: the last layer's final hidden state -> Linear."""

    def __init__(self, cell, input_size, hidden_size, num_layers, num_classes):
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        _, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h
        return self.fc(h[-1])


def load_config(path, mode):
    with open(path) as f:
        config = json.load(f)
    model, data = config["model"], config["data"]
    if model["cell"] not in CELLS or model.get("bidirectional") or data["sequence"] not in SHAPES:
        sys.exit(f"{path}: this script times one-directional LSTM / GRU / tanh RNN models on MNIST sequences")
    if mode == "epoch" and (model["cell"] != "lstm" or "Sgd" not in config["optimizer"]
                            or data["sequence"] != "rows"):
        sys.exit(f"{path}: `epoch` runs the reference program (LSTM + SGD on rows) only")
    return config


def make_optimizer(config, parameters):
    (name, o), = config["optimizer"].items()
    if name == "Sgd":
        return torch.optim.SGD(parameters, lr=o["learning_rate"], momentum=o["momentum"],
                               dampening=o["dampening"], nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    if name == "Adam":
        return torch.optim.Adam(parameters, lr=o["learning_rate"], betas=(o["beta_1"], o["beta_2"]),
                                eps=o["epsilon"], weight_decay=o["weight_decay"])
    if name == "RmsProp":
        return torch.optim.RMSprop(parameters, lr=o["learning_rate"], alpha=o["alpha"], eps=o["epsilon"],
                                   momentum=o["momentum"], centered=o["centered"], weight_decay=o["weight_decay"])
    sys.exit(f"unknown optimizer {name}")


def max_norm(config):
    clipping = config.get("gradient_clipping") or {}
    return clipping.get("Norm", {}).get("max_norm")


def sgemm(args):
    """GFLOP/s of float32 products, median of --repeats timings each."""
    shapes = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (1000, 64, 256)]
    figures = []
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        flop = 2 * m * k * n
        iterations = max(3, int(2e9 // flop))
        for _ in range(2):
            a @ b
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(iterations):
                a @ b
            rates.append(iterations * flop / (time.perf_counter() - start) / 1e9)
        figures.append({"m": m, "k": k, "n": n, "gflops": statistics.median(rates)})
    print(json.dumps({"backend": f"torch {torch.__version__} CPU", "threads": torch.get_num_threads(),
                      "products": figures, "peak_gflops": max(f["gflops"] for f in figures)}))


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


def batches(count, batch_size, classes, shape):
    return [(torch.randn(batch_size, *shape), torch.randint(0, classes, (batch_size,))) for _ in range(count)]


def compute(args, config):
    m = config["model"]
    shape = SHAPES[config["data"]["sequence"]]
    torch.manual_seed(config["seed"])
    model = Net(m["cell"], shape[1], m["hidden_size"], m["num_layers"], m["num_classes"])
    optimizer = make_optimizer(config, model.parameters())
    clip = max_norm(config)
    criterion = nn.CrossEntropyLoss()
    batch_size = config["batch_size"]
    train_batches = batches(8, batch_size, m["num_classes"], shape)

    def train_step(i):
        x, y = train_batches[i % len(train_batches)]
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

    model.train()
    train = median_repeats((max(args.train_steps // 10, 5), args.train_steps, args.repeats), batch_size, train_step)

    model.eval()
    infer = []
    with torch.inference_mode():
        for b in args.infer_batch:
            infer_batches = batches(8, b, m["num_classes"], shape)
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
        model = Net("lstm", m["input_size"], m["hidden_size"], m["num_layers"], m["num_classes"])
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
    parser.add_argument("mode", choices=["compute", "epoch", "sgemm"])
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
    if args.mode == "sgemm":
        sgemm(args)
        return
    config = load_config(args.config, args.mode)
    if args.mode == "compute":
        compute(args, config)
    else:
        if not args.data_dir:
            sys.exit("epoch needs MNIST: --data-dir DIR or MNIST_DIR")
        epoch(args, config)


if __name__ == "__main__":
    main()
