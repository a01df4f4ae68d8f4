#!/usr/bin/env python3
"""Side by side on this machine: lstm-mnist (Burn, release build) against the reference PyTorch program.

  python3 benches/compare.py                         compute: training and inference samples/s, ratios
  python3 benches/compare.py --epoch --epochs 3      also whole epochs of configs/seed.json on real MNIST
                                                     (MNIST_DIR or --data-dir), and each run's memory

Compute runs `bench --json` (crates/bench) for each --backends feature, `bench --model burn-nn` (Burn's
own `burn::nn::Lstm` layers, the native-Burn baseline) on the first backend, and
`benches/pytorch_reference.py compute` (torch, --threads threads). Epochs run the `train` binary and
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


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="ndarray,flex", help="Burn backend features to measure")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--infer-samples", type=int, default=20_000)
    parser.add_argument("--config", default="configs/seed.json")
    parser.add_argument("--epoch", action="store_true", help="also time whole epochs on real MNIST")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]

    binaries = {b: build("bench", b) for b in backends}
    train_binary = build("train", backends[0]) if args.epoch else None

    common = ["--config", args.config, "--repeats", str(args.repeats), "--train-steps", str(args.train_steps),
              "--infer-samples", str(args.infer_samples)]
    results = {"machine": machine(), "pytorch": {}, "burn": {}}
    results["pytorch"]["compute"] = run_json([sys.executable, REFERENCE, "compute", "--threads",
                                              str(args.threads)] + common)
    for b in backends:
        results["burn"][b] = {"compute": run_json([binaries[b], "--json"] + common)}
    baseline = backends[0]
    results["burn_nn"] = {"backend": baseline,
                          "compute": run_json([binaries[baseline], "--json", "--model", "burn-nn"] + common)}

    torch = results["pytorch"]["compute"]
    print(f"machine: {results['machine']}")
    print(f"PyTorch: {torch['backend']}, {torch['threads']} threads; Burn: "
          + ", ".join(f"{b} ({results['burn'][b]['compute']['cores']} cores visible)" for b in backends))
    print(f"{'samples/s (median of ' + str(args.repeats) + ')':<28}{'PyTorch':>10}"
          + "".join(f"{'ours ' + b:>14}{'ratio':>8}" for b in backends)
          + f"{'burn::nn ' + baseline:>18}{'ratio':>8}")
    rows = [("train, batch 64", lambda r: r["train"]["samples_per_s"])]
    for i, entry in enumerate(torch["infer"]):
        rows.append((f"infer, batch {entry['batch_size']}", lambda r, i=i: r["infer"][i]["samples_per_s"]))
    for name, pick in rows:
        line = f"{name:<28}{pick(torch):>10.0f}"
        for b in backends:
            ours = pick(results["burn"][b]["compute"])
            line += f"{ours:>14.0f}{ratio(ours, pick(torch)):>8}"
        native = pick(results["burn_nn"]["compute"])
        line += f"{native:>18.0f}{ratio(native, pick(torch)):>8}"
        print(line)

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
