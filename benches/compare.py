#!/usr/bin/env python3
"""Side by side on this machine: lstm-mnist (Burn, release build) against PyTorch.

  python3 benches/compare.py                         compute: training and inference samples/s, ratios,
                                                     for configs/seed.json (the reference program) and the
                                                     784-step permuted-lstm and permuted-gru-h128 configs,
                                                     with the machine's sgemm rate and each run's GFLOP/s
  python3 benches/compare.py --epoch --epochs 3      also whole epochs of configs/seed.json on real MNIST
                                                     (MNIST_DIR or --data-dir), and each run's memory

Compute runs, for each of --configs, `bench --json` (crates/bench) for each --backends feature and
`benches/pytorch_reference.py compute` (torch, --threads threads); for the first config also `bench
--model burn-nn` (Burn's own `burn::nn::Lstm` layers, the native-Burn baseline) on the first backend.
`benches/pytorch_reference.py sgemm` gives the machine's matrix-product rate (the best GFLOP/s of torch's
`a @ b`); FLOPs are counted from the shapes: a layer's forward pass is 2·G·H·(in + H) per step and
sequence (G gates, hidden H, in features read), training three times that (forward, input and weight
gradients); the head and the element-wise work are not counted. Epochs run the `train` binary and
`benches/pytorch_reference.py epoch` (torchvision DataLoader, the program as written); the resident set
size of each process is read from /proc after every epoch. Builds with cargo first, then measures, so no
build competes with a measurement. Prints a table and, with --json FILE, writes every figure there.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "benches", "pytorch_reference.py")


def cargo_target_dir():
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                              check=True, capture_output=True, text=True)
    return json.loads(metadata.stdout)["target_directory"]


def build(package, feature):
    """Builds `package` with one backend feature and returns a copy of its binary (builds overwrite)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", package, "--no-default-features",
                    "--features", feature], cwd=ROOT, check=True)
    binary = os.path.join(cargo_target_dir(), "release", package)
    copy = os.path.join(tempfile.gettempdir(), f"lstm-mnist-{package}-{feature}")
    subprocess.run(["cp", binary, copy], check=True)
    return copy


def run_json(command):
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory_kib(pid):
    """(VmRSS, VmHWM) of a running process, in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def run_epochs(command, is_epoch_line, env=None):
    """Runs a training process; returns its stdout lines, wall time and the memory after each epoch."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    lines, memory = [], []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if is_epoch_line(line):
            memory.append(memory_kib(process.pid))
    if process.wait() != 0:
        sys.exit(f"{' '.join(command)} failed with exit status {process.returncode}")
    return lines, time.perf_counter() - start, memory


# Per config: the inference batch sizes, training steps and inference samples per timed repeat.
PLANS = {
    "configs/seed.json": ("64,1000", 300, 20_000),
}
LONG_PLAN = ("1000", 6, 3_000)


def forward_flop(config):
    """FLOPs of one sequence's forward pass through the recurrent layers (see the module's docstring)."""
    with open(os.path.join(ROOT, config)) as f:
        c = json.load(f)
    m = c["model"]
    steps, features = {"rows": (28, 28), "pixels": (784, 1), "permuted_pixels": (784, 1)}[c["data"]["sequence"]]
    gates = {"lstm": 4, "peephole_lstm": 4, "gru": 3, "rnn": 1}[m["cell"]]
    directions = 2 if m.get("bidirectional") else 1
    h, flop, width = m["hidden_size"], 0, features
    for _ in range(m["num_layers"]):
        flop += directions * 2 * gates * h * (width + h) * steps
        width = directions * h
    return flop


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="ndarray,flex", help="Burn backend features to measure")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", default="configs/seed.json,configs/permuted-lstm.json,"
                        "configs/permuted-gru-h128.json", help="configs to measure, comma-separated")
    parser.add_argument("--epoch", action="store_true", help="also time whole epochs of the first config on real MNIST")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    configs = [c for c in args.configs.split(",") if c]
    args.config = configs[0]

    binaries = {b: build("bench", b) for b in backends}
    train_binary = build("train", backends[0]) if args.epoch else None

    results = {"machine": machine(), "sgemm": run_json([sys.executable, REFERENCE, "sgemm", "--threads",
                                                        str(args.threads), "--repeats", str(args.repeats)]),
               "configs": {}, "pytorch": {}, "burn": {b: {} for b in backends}}
    peak = results["sgemm"]["peak_gflops"]
    print(f"machine: {results['machine']}")
    print(f"sgemm (torch a @ b, {args.threads} threads): "
          + ", ".join(f"{p['m']}x{p['k']}x{p['n']} {p['gflops']:.0f}" for p in results["sgemm"]["products"])
          + f" GFLOP/s; peak {peak:.0f}")
    for index, config in enumerate(configs):
        infer_batch, train_steps, infer_samples = PLANS.get(config, LONG_PLAN)
        common = ["--config", config, "--repeats", str(args.repeats), "--train-steps", str(train_steps),
                  "--infer-samples", str(infer_samples), "--infer-batch", infer_batch]
        torch = run_json([sys.executable, REFERENCE, "compute", "--threads", str(args.threads)] + common)
        ours = {b: run_json([binaries[b], "--json"] + common) for b in backends}
        entry = {"forward_flop_per_sample": forward_flop(config), "pytorch": torch, "burn": ours}
        baseline = backends[0]
        if index == 0:
            entry["burn_nn"] = {"backend": baseline,
                                "compute": run_json([binaries[baseline], "--json", "--model", "burn-nn"] + common)}
        results["configs"][config] = entry
        flop = entry["forward_flop_per_sample"]
        print()
        print(f"{config}: PyTorch {torch['backend']}, {torch['threads']} threads; Burn "
              + ", ".join(f"{b} ({ours[b]['cores']} cores visible)" for b in backends)
              + f"; {flop / 1e6:.2f} MFLOP per sample forward")
        header = (f"{'samples/s (median of ' + str(args.repeats) + ')':<28}{'PyTorch':>10}"
                  + "".join(f"{'ours ' + b:>14}{'ratio':>8}{'GFLOP/s':>9}{'% peak':>8}" for b in backends))
        if index == 0:
            header += f"{'burn::nn ' + baseline:>18}{'ratio':>8}"
        print(header)
        rows = [(f"train, batch {torch['train']['batch_size']}", lambda r: r["train"]["samples_per_s"], 3)]
        for i, e in enumerate(torch["infer"]):
            rows.append((f"infer, batch {e['batch_size']}", lambda r, i=i: r["infer"][i]["samples_per_s"], 1))
        for name, pick, passes in rows:
            line = f"{name:<28}{pick(torch):>10.0f}"
            for b in backends:
                rate = pick(ours[b])
                gflops = rate * flop * passes / 1e9
                line += f"{rate:>14.0f}{ratio(rate, pick(torch)):>8}{gflops:>9.1f}{100 * gflops / peak:>7.0f}%"
            if index == 0:
                native = pick(entry["burn_nn"]["compute"])
                line += f"{native:>18.0f}{ratio(native, pick(torch)):>8}"
            print(line)
    first = results["configs"][configs[0]]
    results["pytorch"]["compute"] = first["pytorch"]
    for b in backends:
        results["burn"][b]["compute"] = first["burn"][b]
    results["burn_nn"] = first.get("burn_nn")

    if args.epoch:
        if not args.data_dir:
            sys.exit("--epoch needs real MNIST: --data-dir DIR or MNIST_DIR")
        data_dir = os.path.abspath(args.data_dir)
        with tempfile.TemporaryDirectory(prefix="compare-run-") as run_dir:
            lines, wall, memory = run_epochs(
                [train_binary, "--config", args.config, "--epochs", str(args.epochs), "--plain",
                 "--data-dir", data_dir, "--artifacts", os.path.join(run_dir, "run")],
                lambda line: line.startswith("epoch "))
            with open(os.path.join(run_dir, "run", "metrics.json")) as f:
                epochs = json.load(f)["epochs"]
        ours = {"epochs": [{"epoch": e["epoch"], "train_s": e["train_seconds"], "epoch_s": e["wall_seconds"],
                            "test_accuracy": e["valid_accuracy"]} for e in epochs],
                "process_s": wall, "rss_kib_after_epoch": [m[0] for m in memory],
                "peak_rss_kib": max((m[1] for m in memory), default=0)}
        results["burn"][backends[0]]["epoch"] = ours
        lines, wall, memory = run_epochs(
            [sys.executable, REFERENCE, "epoch", "--config", args.config, "--epochs", str(args.epochs),
             "--threads", str(args.threads), "--data-dir", data_dir],
            lambda line: '"epoch":' in line)
        theirs = {"epochs": [json.loads(line) for line in lines if '"epoch":' in line], "process_s": wall,
                  "rss_kib_after_epoch": [m[0] for m in memory],
                  "peak_rss_kib": max((m[1] for m in memory), default=0)}
        results["pytorch"]["epoch"] = theirs

        print()
        print(f"{args.config}, {args.epochs} epochs on real MNIST (train + test pass per epoch)")
        print(f"{'':<28}{'PyTorch':>12}{'burn ' + backends[0]:>14}{'ratio':>8}")
        for i, (t, o) in enumerate(zip(theirs["epochs"], ours["epochs"]), 1):
            print(f"{'epoch ' + str(i) + ' (s)':<28}{t['epoch_s']:>12.2f}{o['epoch_s']:>14.2f}"
                  f"{ratio(t['epoch_s'], o['epoch_s']):>8}")
        best_t = min(e["epoch_s"] for e in theirs["epochs"])
        best_o = min(e["epoch_s"] for e in ours["epochs"])
        print(f"{'fastest epoch (s)':<28}{best_t:>12.2f}{best_o:>14.2f}{ratio(best_t, best_o):>8}")
        print(f"{'whole process (s)':<28}{theirs['process_s']:>12.2f}{ours['process_s']:>14.2f}"
              f"{ratio(theirs['process_s'], ours['process_s']):>8}")
        print(f"{'test accuracy, last epoch':<28}{theirs['epochs'][-1]['test_accuracy']:>11.2f}%"
              f"{ours['epochs'][-1]['test_accuracy']:>13.2f}%")
        for name, run in (("PyTorch", theirs), ("burn " + backends[0], ours)):
            after = ", ".join(f"{kib / 1024:.0f}" for kib in run["rss_kib_after_epoch"])
            print(f"{name}: RSS after each epoch {after} MiB; peak {run['peak_rss_kib'] / 1024:.0f} MiB")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


if __name__ == "__main__":
    main()
