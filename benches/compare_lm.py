#!/usr/bin/env python3
"""Side by side on this machine: the character language model of a text config (Burn, release build)
against the same model in PyTorch.

  python3 benches/compare_lm.py                          configs/shakespeare.json, 2 rounds
  python3 benches/compare_lm.py --window 128 --json lm.json
  python3 benches/compare_lm.py --bench-binary PATH      an already-built `bench` (no cargo build)
  python3 benches/compare_lm.py --ours-json FILE         our figures from FILE (a `bench --json` line),
                                                         `bench` not built or run: checks the PyTorch side
                                                         and the comparison only

Ours: `bench --config CONFIG --json --train-steps N --repeats R --generate-chars C --classes V` (crates/bench;
built once with `cargo build --release -p bench`, default features, unless --bench-binary is given; the
binary is <cargo target dir>/release/bench). PyTorch: `benches/pytorch_lm.py --json` (nn.Embedding ->
nn.LSTM -> nn.Linear at every step, Adam lr 2e-3, clip_grad_norm_ 5.0, truncated BPTT over random windows;
generation at batch 1 with torch.multinomial; --threads threads). Both sides get the config's model
(model.input_size, model.hidden_size, model.num_layers), data.text.window and batch_size, and the vocabulary
--vocab (65, Tiny Shakespeare's); --window overrides the window on both sides (ours through a temporary
copy of the config). The config's dropout is left as it is unless --no-dropout (a temporary copy with
dropout, input_dropout and output_dropout at 0, as on PyTorch's side, which runs none).

The two sides run one after the other, never at the same time, alternating over --rounds rounds (ours
first in even rounds, PyTorch first in odd ones); each side's figure is the median of all its repeats over
all rounds (training characters/s = windows x batch x window / seconds; generation characters/s =
characters / seconds). GFLOP/s = characters/s x FLOPs per character, counted from the shapes as both sides
count them: forward = sum over layers of 2·4H·(in + H) plus the head 2·H·V, training 3 x forward,
generation 1 x forward. Peak: the machine's fp32 FMA rate = cores x lanes (16 with avx512f, 8 on AMD Zen 4
whose 512-bit FMAs run as two 256-bit halves, 8 with avx2/fma, else 4) x 2 (an FMA is two FLOPs) x 2 (FMA pipes per core: an assumption) x clock (lscpu's
max MHz, else /proc/cpuinfo's cpu MHz). Memory: each process's peak resident set size, from
`/usr/bin/time -v` where it exists, else the highest VmHWM read from /proc/<pid>/status while the process
runs (every 50 ms); PyTorch's own VmHWM after training is recorded too. Prints a table and, with
--json FILE, writes every figure there.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTORCH = os.path.join(ROOT, "benches", "pytorch_lm.py")
TIME = "/usr/bin/time"


def cargo_target_dir():
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                              check=True, capture_output=True, text=True)
    return json.loads(metadata.stdout)["target_directory"]


def build_bench():
    """Builds `bench` (release, default features) and returns its path."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "bench"], cwd=ROOT, check=True)
    return os.path.join(cargo_target_dir(), "release", "bench")


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(command):
    """Runs `command` to its end; returns (its last stdout line as JSON, its peak RSS in MiB, how measured)."""
    if os.access(TIME, os.X_OK):
        with tempfile.NamedTemporaryFile(prefix="compare-lm-time-", suffix=".txt", delete=False) as f:
            report = f.name
        try:
            done = subprocess.run([TIME, "-v", "-o", report] + command, cwd=ROOT, capture_output=True, text=True)
            with open(report) as f:
                found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
        finally:
            os.unlink(report)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
        peak, how = (int(found.group(1)) / 1024 if found else None), "/usr/bin/time -v"
    else:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, vm_hwm_kib(process.pid))
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        stdout, stderr = process.communicate()
        code, peak, how = process.returncode, peak_kib / 1024 or None, "VmHWM polled from /proc"
    if code != 0:
        sys.exit(f"{' '.join(command)} failed with exit status {code}:\n{stderr}")
    return json.loads(stdout.strip().splitlines()[-1]), peak, how


def cpu_peak():
    """The machine's fp32 FMA peak in GFLOP/s and the formula it came from."""
    flags, mhz_cpuinfo, vendor, family = set(), 0.0, "", None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key == "cpu family" and family is None:
                    family = int(value)
                elif key == "cpu MHz":
                    mhz_cpuinfo = max(mhz_cpuinfo, float(value))
    except OSError:
        pass
    mhz, source = None, None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        found = re.search(r"^CPU max MHz:\s*([\d.]+)", out, re.MULTILINE)
        if found and float(found.group(1)) > 0:
            mhz, source = float(found.group(1)), "lscpu max MHz"
    except (OSError, subprocess.CalledProcessError):
        pass
    if mhz is None:
        mhz, source = mhz_cpuinfo, "/proc/cpuinfo cpu MHz"
    if "avx512f" in flags and vendor == "AuthenticAMD" and family is not None and family <= 0x19:
        # Zen 4 (family 0x19) runs each 512-bit FMA as two halves on its 256-bit pipes.
        lanes, isa = 8, "avx512f on Zen 4's 256-bit FMA pipes"
    elif "avx512f" in flags:
        lanes, isa = 16, "avx512f"
    elif "avx2" in flags or "fma" in flags:
        lanes, isa = 8, "avx2/fma"
    else:
        lanes, isa = 4, "no avx2/fma"
    cores = os.cpu_count() or 1
    gflops = cores * lanes * 2 * 2 * mhz / 1000
    formula = (f"{cores} cores x {lanes} fp32 lanes ({isa}) x 2 (FMA = 2 FLOPs) x 2 (FMA pipes per core, "
               f"assumed) x {mhz / 1000:.3f} GHz ({source}) = {gflops:.0f} GFLOP/s")
    return {"cores": cores, "lanes": lanes, "isa": isa, "flops_per_fma": 2, "fma_pipes_assumed": 2,
            "mhz": mhz, "mhz_source": source, "gflops": gflops, "formula": formula}


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


def model_of(config, vocab, window):
    m, text = config["model"], config["data"]["text"]
    if m["cell"] != "lstm" or m.get("bidirectional"):
        sys.exit("PyTorch's side runs a one-directional LSTM; the config's model is not one")
    return {"vocab": vocab, "embedding": m["input_size"], "hidden": m["hidden_size"], "layers": m["num_layers"],
            "window": window or text["window"], "batch": config["batch_size"],
            "dropout": {k: m.get(k, 0.0) for k in ("dropout", "input_dropout", "output_dropout")}}


def combined(runs, part):
    """Median of every repeat of `part` ("train" / "generate") over all runs, and the repeats."""
    repeats = [r for run in runs for r in run[part]["repeats"]]
    return statistics.median(repeats), repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/shakespeare.json", help="a text (language-model) config")
    parser.add_argument("--vocab", type=int, default=65, help="vocabulary size (Tiny Shakespeare: 65)")
    parser.add_argument("--window", type=int, help="characters per training window, on both sides "
                        "(default: the config's data.text.window)")
    parser.add_argument("--no-dropout", action="store_true", help="run ours with the config's dropouts at 0")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    parser.add_argument("--train-steps", type=int, default=20, help="training windows per timed repeat")
    parser.add_argument("--generate-chars", type=int, default=500, help="characters generated per timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternated")
    parser.add_argument("--bench-binary", metavar="PATH", help="an already-built bench (skips cargo build)")
    parser.add_argument("--ours-json", metavar="FILE", help="our figures from FILE (a bench --json line, "
                        "optionally with peak_rss_mib); bench is neither built nor run")
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    args = parser.parse_args()
    if min(args.train_steps, args.generate_chars, args.repeats, args.rounds, args.vocab) < 1:
        parser.error("--train-steps, --generate-chars, --repeats, --rounds and --vocab must be at least 1")
    if args.window is not None and args.window < 1:
        parser.error("--window must be at least 1")

    config_path = os.path.join(ROOT, args.config)
    with open(config_path) as f:
        config = json.load(f)
    if config.get("data", {}).get("text") is None:
        sys.exit(f"{args.config}: not a text config (no data.text)")
    model = model_of(config, args.vocab, args.window)

    fake = None
    if args.ours_json:
        with open(args.ours_json) as f:
            fake = json.loads(f.read().strip().splitlines()[-1])
        binary = None
    else:
        binary = os.path.abspath(args.bench_binary) if args.bench_binary else build_bench()
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary}: no bench binary there")

    temporary = None
    ours_config = args.config
    if args.window is not None or args.no_dropout:
        copy = json.loads(json.dumps(config))
        copy["data"]["text"]["window"] = model["window"]
        if args.no_dropout:
            for key in ("dropout", "input_dropout", "output_dropout"):
                if key in copy["model"]:
                    copy["model"][key] = 0.0
        with tempfile.NamedTemporaryFile("w", prefix="compare-lm-", suffix=".json", delete=False) as f:
            json.dump(copy, f, indent=2)
            temporary = ours_config = f.name

    common = ["--train-steps", str(args.train_steps), "--repeats", str(args.repeats),
              "--generate-chars", str(args.generate_chars)]
    ours_command = ([binary, "--config", ours_config, "--json", "--classes", str(args.vocab)] + common
                    if binary else None)
    torch_command = ([sys.executable, PYTORCH, "--json", "--threads", str(args.threads),
                      "--vocab", str(args.vocab), "--embedding", str(model["embedding"]),
                      "--hidden", str(model["hidden"]), "--layers", str(model["layers"]),
                      "--batch", str(model["batch"]), "--window", str(model["window"])] + common)

    ours_runs, torch_runs, ours_rss, torch_rss, how = [], [], [], [], None
    try:
        for round_index in range(args.rounds):
            order = ("ours", "pytorch") if round_index % 2 == 0 else ("pytorch", "ours")
            for side in order:
                if side == "ours":
                    if fake is not None:
                        if not ours_runs:  # one run's figures, used once
                            ours_runs.append(fake)
                            ours_rss.append(fake.get("peak_rss_mib"))
                        continue
                    figures, peak, how = run_measured(ours_command)
                    ours_runs.append(figures)
                    ours_rss.append(peak)
                else:
                    figures, peak, how = run_measured(torch_command)
                    torch_runs.append(figures)
                    torch_rss.append(peak)
                print(f"round {round_index + 1}/{args.rounds}: {side} done", file=sys.stderr, flush=True)
    finally:
        if temporary:
            os.unlink(temporary)

    peak = cpu_peak()
    ours_model, torch_model = ours_runs[0].get("model", {}), torch_runs[0]["model"]
    mismatches = [k for k in ("embedding_size", "hidden_size", "num_layers", "num_classes", "window", "batch_size")
                  if k in ours_model and ours_model[k] != torch_model[k]]
    results = {"machine": machine(), "config": args.config, "model": model, "no_dropout": args.no_dropout,
               "rounds": args.rounds, "peak": peak, "rss_method": how,
               "ours_json_file": args.ours_json, "bench_binary": binary,
               "commands": {"ours": ours_command, "pytorch": torch_command},
               "model_mismatches": mismatches, "burn": {"runs": ours_runs}, "pytorch": {"runs": torch_runs}}
    for name, runs, rss in (("burn", ours_runs, ours_rss), ("pytorch", torch_runs, torch_rss)):
        side = results[name]
        for part in ("train", "generate"):
            median, repeats = combined(runs, part)
            flops = runs[0][part]["flops_per_char"]
            gflops = median * flops / 1e9
            side[part] = {"chars_per_s": median, "repeats": repeats, "flops_per_char": flops, "gflops": gflops,
                          "percent_of_peak": 100 * gflops / peak["gflops"] if peak["gflops"] else None}
        known = [r for r in rss if r is not None]
        side["peak_rss_mib_per_run"] = rss
        side["peak_rss_mib"] = max(known) if known else None
    results["pytorch"]["self_reported_peak_rss_after_training_mib"] = [r["peak_rss_mib"] for r in torch_runs]
    results["ratios"] = {part: results["burn"][part]["chars_per_s"] / results["pytorch"][part]["chars_per_s"]
                         for part in ("train", "generate")}

    ours0, torch0 = ours_runs[0], torch_runs[0]
    dropout = ", ".join(f"{k} {v}" for k, v in model["dropout"].items())
    print(f"machine: {results['machine']}")
    print(f"peak fp32 FMA rate: {peak['formula']}")
    print(f"{args.config}: Embedding {args.vocab}->{model['embedding']} -> LSTM {model['layers']}x{model['hidden']}"
          f" -> Linear {args.vocab}, windows of {model['window']} x batch {model['batch']}; ours: "
          f"{ours0.get('backend', '?')}, {ours0.get('cores', '?')} cores, {ours0.get('instruction_set', '?')} "
          f"kernels, {'no dropout' if args.no_dropout else 'config dropout: ' + dropout}"
          f"{' (figures from ' + args.ours_json + ')' if args.ours_json else ''}; PyTorch: torch "
          f"{torch0['torch_version']}, {torch0['threads']} threads, no dropout")
    if mismatches:
        print(f"warning: the two sides' models differ in {', '.join(mismatches)}")
    for part in ("train", "generate"):
        if ours_runs[0][part]["flops_per_char"] != torch_runs[0][part]["flops_per_char"]:
            print(f"warning: {part} FLOPs per character differ: ours {ours_runs[0][part]['flops_per_char']}, "
                  f"PyTorch {torch_runs[0][part]['flops_per_char']}")
    counts = {len(results[n]["train"]["repeats"]) for n in ("burn", "pytorch")}
    repeats = " / ".join(str(len(results[n]["train"]["repeats"])) for n in ("burn", "pytorch")) \
        if len(counts) > 1 else str(counts.pop())
    print()
    print(f"{'median of ' + repeats + ' repeats':<26}{'ours':>12}{'PyTorch':>12}{'ratio':>8}"
          f"{'ours GFLOP/s':>14}{'% peak':>8}{'PyTorch GFLOP/s':>17}{'% peak':>8}")
    for part, label in (("train", f"train chars/s"), ("generate", "generate chars/s (b 1)")):
        o, t = results["burn"][part], results["pytorch"][part]
        print(f"{label:<26}{o['chars_per_s']:>12.0f}{t['chars_per_s']:>12.0f}"
              f"{results['ratios'][part]:>7.2f}x{o['gflops']:>14.2f}{o['percent_of_peak']:>7.1f}%"
              f"{t['gflops']:>17.2f}{t['percent_of_peak']:>7.1f}%")

    def mib(value):
        return f"{value:.0f}" if value is not None else "n/a"

    o_rss, t_rss = results["burn"]["peak_rss_mib"], results["pytorch"]["peak_rss_mib"]
    rss_ratio = f"{o_rss / t_rss:>7.2f}x" if o_rss and t_rss else f"{'':>8}"
    print(f"{'peak RSS (MiB)':<26}{mib(o_rss):>12}{mib(t_rss):>12}{rss_ratio}")
    print(f"(RSS: whole process, {how or 'not measured'}; PyTorch's own VmHWM after training: "
          + ", ".join(mib(r) for r in results["pytorch"]["self_reported_peak_rss_after_training_mib"]) + " MiB)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
