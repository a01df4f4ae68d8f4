#!/usr/bin/env python3
"""Side by side on this machine: the CTC transcriber of a pronunciations config (Burn, release build) against
the same model in PyTorch, in words per second.

  python3 benches/compare_g2p.py                         configs/g2p.json, 2 rounds
  python3 benches/compare_g2p.py --json g2p.json
  python3 benches/compare_g2p.py --bench-binary PATH     an already-built `bench` (no cargo build)

Ours: `bench --config CONFIG --json --train-steps N --repeats R --infer-batch B --infer-samples W --vocab V
--classes C` (crates/bench/src/transcription.rs; built once with `cargo build --release -p bench` unless
--bench-binary is given). PyTorch: `benches/pytorch_g2p.py --json` (nn.Embedding -> bidirectional nn.LSTM over
packed sequences -> nn.Dropout -> nn.Linear -> log_softmax -> F.ctc_loss, Adam, clip_grad_norm_; greedy
transcription under torch.inference_mode(); --threads threads). Both sides get the config's model
(input_size, hidden_size, num_layers, dropout, output_dropout), batch_size, data.pronunciations.repeat and
padding, the optimizer's learning rate and the clipping norm, and the same made-up words (see
pytorch_g2p.py): --vocab input tokens (30, CMUdict's) and --classes outputs (40).

The two sides run one after the other, never at the same time, alternating over --rounds rounds (ours first
in even rounds); each figure is the median of all its repeats over all rounds. Memory: each process's peak
resident set size, as benches/compare_lm.py measures it. Prints a table and, with --json FILE, writes every
figure there.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_lm import ROOT, build_bench, machine, run_measured  # noqa: E402

PYTORCH = os.path.join(ROOT, "benches", "pytorch_g2p.py")


def model_of(config):
    m, p = config["model"], config["data"].get("pronunciations")
    if p is None:
        sys.exit("not a pronunciations config (no data.pronunciations)")
    if m["cell"] != "lstm" or not m.get("bidirectional"):
        sys.exit("PyTorch's side runs a bidirectional LSTM; the config's model is not one")
    optimizer = next(iter(config["optimizer"].values()))
    clipping = (config.get("gradient_clipping") or {}).get("Norm", {}).get("max_norm")
    if clipping is None:
        sys.exit("PyTorch's side clips to a global norm; the config has no gradient_clipping.Norm")
    return {"embedding": m["input_size"], "hidden": m["hidden_size"], "layers": m["num_layers"],
            "dropout": m.get("dropout", 0.0), "output_dropout": m.get("output_dropout", 0.0),
            "repeat": p.get("repeat", 2), "padding": p.get("padding", 1), "batch": config["batch_size"],
            "lr": optimizer["learning_rate"], "clip": clipping}


def median_of(runs, pick):
    repeats = [r for run in runs for r in pick(run)["repeats"]]
    return statistics.median(repeats), repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/g2p.json", help="a pronunciations config")
    parser.add_argument("--vocab", type=int, default=30, help="input tokens with the padding id (CMUdict: 30)")
    parser.add_argument("--classes", type=int, default=40, help="outputs with the blank (CMUdict: 40)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    parser.add_argument("--train-steps", type=int, default=16, help="training batches per timed repeat")
    parser.add_argument("--infer-batch", default="1,256", help="transcription batch sizes")
    parser.add_argument("--infer-words", type=int, default=2048, help="words transcribed per timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternated")
    parser.add_argument("--bench-binary", metavar="PATH", help="an already-built bench (skips cargo build)")
    parser.add_argument("--json", metavar="FILE", help="write all figures to FILE")
    args = parser.parse_args()
    if min(args.train_steps, args.infer_words, args.repeats, args.rounds) < 1 or min(args.vocab, args.classes) < 2:
        parser.error("--train-steps, --infer-words, --repeats and --rounds must be at least 1, "
                     "--vocab and --classes at least 2")

    with open(os.path.join(ROOT, args.config)) as f:
        model = model_of(json.load(f))
    binary = os.path.abspath(args.bench_binary) if args.bench_binary else build_bench()
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary}: no bench binary there")

    ours_command = [binary, "--config", args.config, "--json", "--train-steps", str(args.train_steps),
                    "--repeats", str(args.repeats), "--infer-batch", args.infer_batch,
                    "--infer-samples", str(args.infer_words), "--vocab", str(args.vocab),
                    "--classes", str(args.classes)]
    torch_command = [sys.executable, PYTORCH, "--json", "--threads", str(args.threads),
                     "--vocab", str(args.vocab), "--classes", str(args.classes),
                     "--embedding", str(model["embedding"]), "--hidden", str(model["hidden"]),
                     "--layers", str(model["layers"]), "--dropout", str(model["dropout"]),
                     "--output-dropout", str(model["output_dropout"]), "--repeat", str(model["repeat"]),
                     "--padding", str(model["padding"]), "--batch", str(model["batch"]),
                     "--lr", str(model["lr"]), "--clip", str(model["clip"]),
                     "--train-steps", str(args.train_steps), "--infer-batch", args.infer_batch,
                     "--infer-words", str(args.infer_words), "--repeats", str(args.repeats)]

    runs = {"burn": [], "pytorch": []}
    rss = {"burn": [], "pytorch": []}
    how = None
    for round_index in range(args.rounds):
        order = ("burn", "pytorch") if round_index % 2 == 0 else ("pytorch", "burn")
        for side in order:
            figures, peak, how = run_measured(ours_command if side == "burn" else torch_command)
            runs[side].append(figures)
            rss[side].append(peak)
            print(f"round {round_index + 1}/{args.rounds}: {side} done", file=sys.stderr, flush=True)

    results = {"machine": machine(), "config": args.config, "model": model, "rounds": args.rounds,
               "rss_method": how, "commands": {"burn": ours_command, "pytorch": torch_command}}
    batches = [int(b) for b in args.infer_batch.split(",")]
    for side in ("burn", "pytorch"):
        train, train_repeats = median_of(runs[side], lambda r: r["train"])
        transcribe = {}
        for k, b in enumerate(batches):
            median, repeats = median_of(runs[side], lambda r, k=k: r["transcribe"][k])
            transcribe[b] = {"words_per_s": median, "repeats": repeats}
        known = [r for r in rss[side] if r is not None]
        results[side] = {"runs": runs[side], "train": {"words_per_s": train, "repeats": train_repeats},
                         "transcribe": transcribe, "peak_rss_mib": max(known) if known else None}
    results["ratios"] = {"train": results["burn"]["train"]["words_per_s"] / results["pytorch"]["train"]["words_per_s"],
                         "transcribe": {b: results["burn"]["transcribe"][b]["words_per_s"]
                                        / results["pytorch"]["transcribe"][b]["words_per_s"] for b in batches}}
    ours0, torch0 = runs["burn"][0], runs["pytorch"][0]
    mismatches = [k for k in ("embedding_size", "hidden_size", "num_layers", "num_classes", "vocab_size",
                              "batch_size", "repeat", "padding")
                  if ours0["model"].get(k) != torch0["model"].get(k)]
    results["model_mismatches"] = mismatches

    print(f"machine: {results['machine']}")
    print(f"{args.config}: Embedding {args.vocab}->{model['embedding']} -> bidirectional LSTM "
          f"{model['layers']}x{model['hidden']} -> Linear {args.classes}, CTC, dropout {model['dropout']} / "
          f"{model['output_dropout']}, batch {model['batch']}; ours: {ours0['backend']}, {ours0['cores']} cores, "
          f"{ours0['instruction_set']} kernels; PyTorch: torch {torch0['torch_version']}, {torch0['threads']} threads")
    if mismatches:
        print(f"warning: the two sides' models differ in {', '.join(mismatches)}")
    counts = " / ".join(str(len(results[s]["train"]["repeats"])) for s in ("burn", "pytorch"))
    print()
    print(f"{'median of ' + counts + ' repeats':<30}{'ours':>10}{'PyTorch':>10}{'ratio':>8}")
    o, t = results["burn"]["train"]["words_per_s"], results["pytorch"]["train"]["words_per_s"]
    print(f"{'train words/s':<30}{o:>10.0f}{t:>10.0f}{results['ratios']['train']:>7.2f}x")
    for b in batches:
        o, t = results["burn"]["transcribe"][b]["words_per_s"], results["pytorch"]["transcribe"][b]["words_per_s"]
        print(f"{f'greedy words/s, batch {b}':<30}{o:>10.0f}{t:>10.0f}{results['ratios']['transcribe'][b]:>7.2f}x")
    o, t = results["burn"]["peak_rss_mib"], results["pytorch"]["peak_rss_mib"]
    if o and t:
        print(f"{'peak RSS (MiB)':<30}{o:>10.0f}{t:>10.0f}{o / t:>7.2f}x   ({how})")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
