#!/usr/bin/env python3
"""One recipe for `.ts` datasets of every size: `configs/sequences.json`, unchanged, trained on archive-style
datasets from 36 to 10 000 training examples, beside an untuned PyTorch GRU, test accuracy and time.

  python3 benches/ts_recipe.py --out /tmp/ts-recipe [--fsdd-dir DIR] [--mnist-dir DIR] [--json FILE]

Datasets (none committed; all written or copied under --out):
  - from aeon's own package (the time-series classification archive's files, as aeon 1.6 bundles them):
    ArrowHead (36 training examples, 1 channel, 251 steps, 3 classes), BasicMotions (40, 6 channels, 100 steps,
    4 classes), GunPoint (50, 1, 150, 2), ItalyPowerDemand (67, 1, 24, 2), JapaneseVowels (270, 12 channels,
    7-29 steps, 9 classes), OSULeaf (200, 1, 427, 6);
  - FSDD_TRAIN.ts / FSDD_TEST.ts from --fsdd-dir (2 400 spoken digits, 13 MFCCs, 6-92 steps, 10 classes);
  - MNIST10k: the first 10 000 MNIST training images and the first 2 000 test images from --mnist-dir (IDX files,
    read here with numpy), each image 28 steps of 28 channels, pixels / 255, written with aeon's
    `save_to_ts_file`.

Ours: `train --config configs/sequences.json --data-dir DATASET --artifacts OUT/runs/NAME --plain` (release,
built with `cargo build --release -p train` unless --train-binary is given): the config's bidirectional GRU
2 x 64, 20 % of the training examples held out for validation, at least 600 optimizer steps of batch 32, the
epoch with the lowest validation loss kept and tested once. Accuracy and the model epoch come from the run's
metrics.json; time is the whole process (data reading and test included), wall clock.

PyTorch, untuned (this script, `--threads` threads): nn.GRU(channels, 64, num_layers=2, batch_first=True) over
packed sequences, the last layer's final state -> nn.Linear; inputs normalized per channel with the training
examples' mean and standard deviation; Adam 1e-3, batch 32, 100 epochs over all training examples, the last
epoch's model tested. Time: training and test, wall clock.
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AEON_SETS = ["ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf"]


def aeon_data_dir():
    import aeon
    return os.path.join(os.path.dirname(aeon.__file__), "datasets", "data")


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    sys.exit(f"{directory}: no {stem}[.gz]")


def prepare(out, fsdd_dir, mnist_dir):
    """Writes or copies every dataset under out/data/NAME; returns [(name, dir)]."""
    sets = []
    source = aeon_data_dir()
    for name in AEON_SETS:
        target = os.path.join(out, "data", name)
        os.makedirs(target, exist_ok=True)
        for part in ("TRAIN", "TEST"):
            shutil.copy(os.path.join(source, name, f"{name}_{part}.ts"), target)
        sets.append((name, target))
    if fsdd_dir:
        target = os.path.join(out, "data", "FSDD")
        os.makedirs(target, exist_ok=True)
        for part in ("TRAIN", "TEST"):
            shutil.copy(os.path.join(fsdd_dir, f"FSDD_{part}.ts"), target)
        sets.append(("FSDD", target))
    if mnist_dir:
        from aeon.datasets import save_to_ts_file
        target = os.path.join(out, "data", "MNIST10k")
        os.makedirs(target, exist_ok=True)
        for part, images, labels, count in (("TRAIN", "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 10000),
                                            ("TEST", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 2000)):
            x = read_idx(find(mnist_dir, images))[:count].astype(np.float32) / 255.0
            y = read_idx(find(mnist_dir, labels))[:count].astype(str)
            # aeon's layout: (cases, channels, steps); an image row is a step, its 28 pixels the channels.
            save_to_ts_file(np.transpose(x, (0, 2, 1)), y, label_type="classification", path=target,
                            problem_name="MNIST10k", file_suffix=f"_{part}")
        sets.append(("MNIST10k", target))
    return sets


def describe(directory):
    from aeon.datasets import load_from_ts_file
    name = os.path.basename(directory)
    x, y = load_from_ts_file(os.path.join(directory, f"{name}_TRAIN.ts"))
    lengths = [a.shape[-1] for a in x]
    return {"train": len(y), "channels": int(x[0].shape[0]), "classes": len(set(y)),
            "steps": [int(min(lengths)), int(max(lengths))]}


def ours(binary, directory, runs):
    name = os.path.basename(directory)
    run = os.path.join(runs, name)
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([binary, "--config", "configs/sequences.json", "--data-dir", directory,
                           "--artifacts", run, "--plain"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"train on {name} failed:\n{done.stderr}")
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    return {"accuracy": metrics["test"]["accuracy"], "seconds": seconds, "model_epoch": metrics["model_epoch"],
            "epochs": config["num_epochs"], "valid_items": metrics["valid_items"],
            "train_items": metrics["train_items"]}


def pytorch(directory, threads, epochs=100, seed=0):
    import torch
    from aeon.datasets import load_from_ts_file
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    name = os.path.basename(directory)
    x_train, y_train = load_from_ts_file(os.path.join(directory, f"{name}_TRAIN.ts"))
    x_test, y_test = load_from_ts_file(os.path.join(directory, f"{name}_TEST.ts"))
    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}

    def sequences(x):
        return [torch.tensor(np.asarray(a, dtype=np.float32).T) for a in x]  # [steps, channels]

    train, test = sequences(x_train), sequences(x_test)
    stacked = torch.cat(train)
    mean, std = stacked.mean(0), stacked.std(0).clamp_min(1e-8)
    train = [(s - mean) / std for s in train]
    test = [(s - mean) / std for s in test]
    labels = torch.tensor([index[c] for c in y_train])
    test_labels = torch.tensor([index[c] for c in y_test])

    class Gru(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(train[0].shape[1], 64, num_layers=2, batch_first=True)
            self.head = nn.Linear(64, len(classes))

        def forward(self, batch):
            lengths = torch.tensor([len(s) for s in batch])
            padded = nn.utils.rnn.pad_sequence(batch, batch_first=True)
            _, h = self.rnn(pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False))
            return self.head(h[-1])

    model = Gru()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train))
        for k in range(0, len(order), 32):
            ids = order[k:k + 32].tolist()
            loss = nn.functional.cross_entropy(model([train[i] for i in ids]), labels[ids])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    right = 0
    with torch.inference_mode():
        for k in range(0, len(test), 256):
            right += (model(test[k:k + 256]).argmax(1) == test_labels[k:k + 256]).sum().item()
    return {"accuracy": 100.0 * right / len(test), "seconds": time.perf_counter() - start, "epochs": epochs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="working directory (datasets and runs)")
    parser.add_argument("--fsdd-dir", help="directory of FSDD_TRAIN.ts and FSDD_TEST.ts")
    parser.add_argument("--mnist-dir", help="directory of the four MNIST IDX files")
    parser.add_argument("--train-binary", help="an already-built train (skips cargo build)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    parser.add_argument("--only", help="comma-separated dataset names")
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = parser.parse_args()
    binary = args.train_binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "train"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "train")
    sets = prepare(args.out, args.fsdd_dir, args.mnist_dir)
    if args.only:
        wanted = set(args.only.split(","))
        sets = [s for s in sets if s[0] in wanted]
    results = []
    for name, directory in sets:
        row = {"dataset": name, **describe(directory), "ours": ours(binary, directory, os.path.join(args.out, "runs"))}
        if not args.skip_pytorch:
            row["pytorch"] = pytorch(directory, args.threads)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print("| dataset | train | channels | steps | classes | ours: test % | epochs (kept) | s | PyTorch GRU: test % | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        o, p = r["ours"], r.get("pytorch")
        steps = f"{r['steps'][0]}" if r["steps"][0] == r["steps"][1] else f"{r['steps'][0]}-{r['steps'][1]}"
        print(f"| {r['dataset']} | {r['train']} | {r['channels']} | {steps} | {r['classes']} | {o['accuracy']:.2f} | "
              f"{o['epochs']} ({o['model_epoch']}) | {o['seconds']:.0f} | "
              + (f"{p['accuracy']:.2f} | {p['seconds']:.0f} |" if p else "| |"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": os.uname().nodename, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
