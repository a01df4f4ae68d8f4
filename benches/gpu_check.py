#!/usr/bin/env python3
"""The one-shot GPU check: the CubeCL kernels on a real GPU, through both GPU backends (cuda, wgpu).

Runs on a machine with an NVIDIA GPU, Python 3 and no Rust or network, from the repository root, with
the binaries that `benches/gpu_pack.sh` built elsewhere:

  python3 benches/gpu_check.py --pack gpu-check/pack --out OUT [--budget 450]

(or, where only the compressed pack travelled: `tar -xJf gpu-check/pack.tar.xz -C /tmp/g` and --pack /tmp/g/pack).

For each backend: the parity example on every PyTorch fixture in tests/fixtures (the fused kernels against
real PyTorch, packed sequences included), `bench` on configs/seed.json (the reference model: training at
batch 64, inference at 64 and 1000) and on configs/permuted-lstm.json (784 steps, hidden 128), and one
epoch of configs/seed.json on MNIST (test accuracy after it, as the reference program does). Steps run
interleaved, both backends' parity first, so that a step that runs out of the time budget (default 450 s,
inside the 8 minutes the check is sized for) leaves the most important figures standing; each step has its
own timeout, and a step that fails or times out is recorded as such and the check goes on.

Writes OUT/gpu-check.json (the GPU, every step's command, status, seconds and figures) and OUT/gpu-check.log
(every step's output). Exits 0 when every step passed.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("cuda", "wgpu")


def gpu_identity():
    """The GPU as nvidia-smi names it, or why it could not."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"nvidia-smi failed: {error}"


def prepare_environment(pack, log):
    """Library paths for NVRTC and the Vulkan loader, unpacked from the pack where none is installed."""
    env = dict(os.environ)
    library_dirs = [d for d in ("/usr/local/cuda/lib64", "/usr/local/nvidia/lib64") if os.path.isdir(d)]
    have_vulkan = "libvulkan.so.1" in subprocess.run(
        ["ldconfig", "-p"], capture_output=True, text=True).stdout
    if not have_vulkan:
        root = tempfile.mkdtemp(prefix="gpu-check-gl-")
        for deb in glob.glob(os.path.join(pack, "gl", "*.deb")):
            subprocess.run(["dpkg", "-x", deb, root], check=False)
        library_dirs += glob.glob(os.path.join(root, "usr", "lib", "*-linux-gnu"))
        log.write(f"no libvulkan.so.1 installed: using the loader unpacked in {root}\n")
    if library_dirs:
        env["LD_LIBRARY_PATH"] = ":".join(library_dirs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    icd = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
    if os.path.isfile(icd) and not glob.glob("/usr/share/vulkan/icd.d/nvidia*.json") \
            and not glob.glob("/etc/vulkan/icd.d/nvidia*.json"):
        env.setdefault("VK_DRIVER_FILES", icd)
    env["MNIST_DIR"] = os.path.join(os.path.abspath(pack), "mnist")
    env["RUST_BACKTRACE"] = "1"
    return env


def last_json(text):
    """The last line of `text` that parses as a JSON object, or None."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def epoch_figures(run_dir):
    """The first epoch's figures from a run's metrics.json."""
    try:
        with open(os.path.join(run_dir, "metrics.json")) as f:
            epochs = json.load(f)["epochs"]
    except (OSError, KeyError, json.JSONDecodeError) as error:
        return {"error": f"no metrics.json: {error}"}
    first = epochs[0]
    return {key: first.get(key) for key in
            ("train_seconds", "wall_seconds", "train_samples_per_second", "valid_accuracy", "valid_loss")}


def steps(pack, work):
    """(name, backend, command, timeout s, figures-from-output) in the order they run."""
    fixtures = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "pytorch-*.safetensors")))
    order = []
    for backend in BACKENDS:
        order.append(("parity", backend, [os.path.join(pack, backend, "parity"), *fixtures], 150, None))
    for backend in BACKENDS:
        order.append(("bench seed", backend, [
            os.path.join(pack, backend, "bench"), "--config", "configs/seed.json", "--train-steps", "100",
            "--infer-batch", "64,1000", "--infer-samples", "10000", "--repeats", "3", "--json"], 90,
            lambda out: last_json(out)))
    for backend in BACKENDS:
        run_dir = os.path.join(work, f"seed-{backend}")
        order.append(("seed epoch", backend, [
            os.path.join(pack, backend, "train"), "--plain", "--offline", "--config", "configs/seed.json",
            "--epochs", "1", "--artifacts", run_dir], 150,
            lambda _out, run_dir=run_dir: epoch_figures(run_dir)))
    for backend in BACKENDS:
        order.append(("bench permuted-lstm", backend, [
            os.path.join(pack, backend, "bench"), "--config", "configs/permuted-lstm.json",
            "--train-steps", "5", "--infer-batch", "1000", "--infer-samples", "2000", "--repeats", "2",
            "--json"], 120, lambda out: last_json(out)))
    return order


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", default="gpu-check/pack", help="what benches/gpu_pack.sh built")
    parser.add_argument("--out", required=True, help="directory for gpu-check.json and gpu-check.log")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all steps together")
    args = parser.parse_args()
    pack = os.path.abspath(args.pack)
    os.makedirs(args.out, exist_ok=True)
    for backend in BACKENDS:
        for binary in ("train", "bench", "parity"):
            path = os.path.join(pack, backend, binary)
            if not os.access(path, os.X_OK):
                sys.exit(f"gpu_check: {path} is missing: build the pack with benches/gpu_pack.sh")

    work = tempfile.mkdtemp(prefix="gpu-check-runs-")
    deadline = time.monotonic() + args.budget
    report = {"gpu": gpu_identity(), "budget_seconds": args.budget, "steps": []}
    with open(os.path.join(args.out, "gpu-check.log"), "w") as log:
        env = prepare_environment(pack, log)
        log.write(f"gpu: {report['gpu']}\n")
        for name, backend, command, timeout, figures in steps(pack, work):
            entry = {"step": name, "backend": backend,
                     "command": " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                                         for c in command)}
            left = deadline - time.monotonic()
            if left < 5:
                entry["status"] = "skipped: out of time"
                report["steps"].append(entry)
                continue
            log.write(f"\n=== {backend}: {name}\n$ {entry['command']}\n")
            log.flush()
            start = time.monotonic()
            try:
                run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                     timeout=min(timeout, left))
                output = run.stdout + run.stderr
                entry["status"] = "passed" if run.returncode == 0 else f"failed (exit {run.returncode})"
            except subprocess.TimeoutExpired as expired:
                output = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) \
                    else (expired.stdout or "")
                entry["status"] = f"timed out after {min(timeout, left):.0f} s"
            entry["seconds"] = round(time.monotonic() - start, 1)
            log.write(output)
            log.write(f"--- {entry['status']} in {entry['seconds']} s\n")
            log.flush()
            if figures is not None and entry["status"] == "passed":
                entry["figures"] = figures(output)
            if name == "parity":
                entry["figures"] = {"fixtures": len(command) - 1,
                                    "summary": next((line for line in reversed(output.splitlines())
                                                     if line.startswith("parity")), None)}
            report["steps"].append(entry)
            print(f"{backend:5} {name:20} {entry['status']} ({entry['seconds']} s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(args.out, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=2)
    passed = all(step["status"] == "passed" for step in report["steps"])
    print(f"gpu_check: {'all steps passed' if passed else 'some steps did not pass'}; "
          f"{os.path.join(args.out, 'gpu-check.json')}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
