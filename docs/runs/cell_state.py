#!/usr/bin/env python3
"""Gate and cell-state statistics of a one-layer (peephole) LSTM record over sequential-pixel MNIST.

Reads a model record (`model.mpk`) or a training checkpoint (`checkpoint/model-N.mpk`) of a one-layer `lstm` or
`peephole_lstm` run, runs the first N training images through it pixel by pixel (784 steps) in NumPy, and prints,
at a few steps, the mean input, forget and output gates, the mean and largest |c|, and how much the hidden state
still differs between images (its standard deviation over the batch, averaged over units). docs/experiments.md
uses it to show why the peephole LSTM stays at chance.

    MNIST_DIR=/path/to/mnist python3 docs/runs/cell_state.py artifacts/pixels-peephole_lstm-orthogonal/model.mpk

Needs numpy and msgpack (`pip install numpy msgpack`).
"""

import argparse
import gzip
import os

import msgpack
import numpy as np


def idx(directory, name):
    """One IDX file, raw or gzipped."""
    path = os.path.join(directory, name)
    data = open(path, "rb").read() if os.path.exists(path) else gzip.open(path + ".gz").read()
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def layer(path):
    """The first recurrent layer's tensors, in Burn's layout ([in, 4H], [H, 4H], gates i, f, g, o)."""
    item = msgpack.unpackb(open(path, "rb").read(), raw=False, strict_map_key=False)["item"]
    model = item["model"] if "model" in item else item  # a checkpoint nests the classifier
    tensors = {}
    for key, value in model["rnn"]["layers"][0].items():
        if isinstance(value, dict) and "param" in value:
            param = value["param"]
            tensors[key] = np.frombuffer(param["bytes"], dtype=np.float32).reshape(param["shape"])
    if len(model["rnn"]["layers"]) != 1:
        raise SystemExit(f"{path}: only one-layer models are supported")
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="model.mpk or checkpoint/model-N.mpk of a one-layer LSTM run")
    parser.add_argument("--images", type=int, default=100, help="training images to run (default 100)")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_DIR"), help="MNIST directory [MNIST_DIR]")
    args = parser.parse_args()
    if not args.mnist:
        raise SystemExit("set MNIST_DIR or --mnist to the directory holding the MNIST IDX files")
    images = idx(args.mnist, "train-images-idx3-ubyte")[: args.images].reshape(args.images, 784)
    x = (images.astype(np.float32) / 255 - 0.1307) / 0.3081
    w = layer(args.record)
    hidden = w["weight_hh"].shape[0]
    peephole = "weight_ci" in w
    sigmoid = lambda z: 0.5 * (1 + np.tanh(0.5 * z))  # no overflow for large |z|
    h = np.zeros((args.images, hidden), np.float32)
    c = np.zeros_like(h)
    bias = w["bias_ih"] + w["bias_hh"]
    print(f"{args.record}: {'peephole ' if peephole else ''}LSTM, hidden {hidden}, {args.images} images")
    print(" step   input  forget  output   mean|c|    max|c|  spread of h over images")
    for t in range(784):
        z = x[:, t : t + 1] @ w["weight_ih"] + h @ w["weight_hh"] + bias
        i, f, g, o = np.split(z, 4, axis=1)
        if peephole:
            i, f = i + w["weight_ci"] * c, f + w["weight_cf"] * c
        i, f, g = sigmoid(i), sigmoid(f), np.tanh(g)
        c = f * c + i * g
        if peephole:
            o = o + w["weight_co"] * c
        o = sigmoid(o)
        h = o * np.tanh(c)
        if t + 1 in (100, 300, 500, 700, 784):
            print(
                f"{t + 1:5d}  {i.mean():6.3f}  {f.mean():6.3f}  {o.mean():6.3f}  {np.abs(c).mean():8.3f}"
                f"  {np.abs(c).max():8.2f}  {h.std(axis=0).mean():.4f}"
            )


if __name__ == "__main__":
    main()
