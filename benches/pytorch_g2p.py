#!/usr/bin/env python3
"""PyTorch's side of the transcription (CTC) benchmark, timed the way `bench` times a pronunciations config.

  python3 benches/pytorch_g2p.py [--json]    defaults: the model of configs/g2p.json (30 input tokens,
                                             embedding 64, bidirectional LSTM 2 x 256, 40 classes), batch 64

The model: nn.Embedding(V, E, padding_idx=0) -> bidirectional nn.LSTM(E, H, num_layers=L, batch_first=True,
dropout=--dropout) over nn.utils.rnn.pack_padded_sequence (each word run to its own length) -> nn.Dropout
(--output-dropout) -> nn.Linear(2H, C) -> log_softmax at every step. Parameters start from
torch.manual_seed(--seed).

The words (the same as `bench`'s, crates/bench/src/transcription.rs, drawn by the same generator):
state = state * 6364136223846793005 + 1442695040888963407 (mod 2^64), a draw in [0, n) = (state >> 33) % n;
per word: letters = 4 + draw(8), then each letter 1 + draw(V - 1), then round(0.85 x letters) phonemes, each
1 + draw(C - 1); steps = each letter --repeat times, then --padding steps of id 0. 16 x batch words, sorted
longest first (stably) and cut into 16 batches. Seed 1 for training, 2 for transcription.

  train       model.train(); F.ctc_loss(log_probs [T, N, C], targets, input lengths, target lengths,
              blank=0, reduction='mean', zero_infinity=True); zero_grad / backward /
              clip_grad_norm_(parameters, --clip) / torch.optim.Adam(lr=--lr).step(). As ours, the step
              also decodes each word's best path (argmax, repeats merged, blanks dropped) for an
              exact-match accuracy. 3 untimed steps, then --repeats repeats of --train-steps steps;
              words/s = words / seconds (time.perf_counter).
  transcribe  model.eval() under torch.inference_mode(), at each --infer-batch: log-probabilities, argmax per
              step, each word's best path collapsed on the host (as `infer transcribe` does); a tenth of the
              iterations untimed first (at least 2), then --repeats repeats of --infer-words words (rounded up
              to whole batches).

Each figure is the median of its repeats. Memory: the process's peak resident set size (VmHWM) after
training, in MiB. Threads: torch.set_num_threads(--threads), default 2. Prints a summary, or with --json one
JSON line: {"framework": "pytorch", "torch_version", "threads", "model", "train": {"words_per_s", "repeats"},
"transcribe": [{"batch_size", "words_per_s", "repeats"}], "peak_rss_mib"}. Needs torch: pip install torch.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_lm import peak_rss_mib  # noqa: E402

POOL_BATCHES = 16
LETTERS = (4, 11)


class Transcriber(nn.Module):
    """Embedding -> bidirectional LSTM over packed sequences -> Linear at every step."""

    def __init__(self, args):
        super().__init__()
        self.embedding = nn.Embedding(args.vocab, args.embedding, padding_idx=0)
        self.rnn = nn.LSTM(args.embedding, args.hidden, num_layers=args.layers, batch_first=True,
                           bidirectional=True, dropout=args.dropout)
        self.dropout = nn.Dropout(args.output_dropout)
        self.head = nn.Linear(2 * args.hidden, args.classes)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=True)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        return F.log_softmax(self.head(self.dropout(output)), dim=2)


def words(args, batch, seed):
    """The made-up words as batches: (tokens [N, T], lengths [N], targets [sum S], target lengths [N])."""
    mask = (1 << 64) - 1
    state = seed

    def draw(n):
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        return (state >> 33) % n

    made = []
    for _ in range(batch * POOL_BATCHES):
        letters = LETTERS[0] + draw(LETTERS[1] - LETTERS[0] + 1)
        spelling = [1 + draw(args.vocab - 1) for _ in range(letters)]
        sounds = int(letters * 0.85 + 0.5)  # Rust's f64::round: halves away from zero
        target = [1 + draw(args.classes - 1) for _ in range(sounds)]
        steps = [t for t in spelling for _ in range(args.repeat)] + [0] * args.padding
        made.append((steps, target))
    made.sort(key=lambda w: -len(w[0]))  # stable, as ours
    batches = []
    for start in range(0, len(made), batch):
        part = made[start:start + batch]
        longest = len(part[0][0])
        tokens = torch.zeros(len(part), longest, dtype=torch.long)
        for row, (steps, _) in enumerate(part):
            tokens[row, :len(steps)] = torch.tensor(steps)
        lengths = torch.tensor([len(s) for s, _ in part])
        targets = torch.tensor([t for _, target in part for t in target])
        target_lengths = torch.tensor([len(t) for _, t in part])
        batches.append((tokens, lengths, targets, target_lengths))
    return batches


def best_paths(log_probs, lengths):
    """Each word's best path: argmax per step, repeats merged, blanks (0) dropped."""
    ids = log_probs.argmax(dim=2).tolist()
    out = []
    for row, length in zip(ids, lengths.tolist()):
        path, previous = [], None
        for c in row[:length]:
            if c != 0 and c != previous:
                path.append(c)
            previous = c
        out.append(path)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=30, help="input tokens, the padding id 0 included")
    parser.add_argument("--classes", type=int, default=40, help="output classes, the blank 0 included")
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2, help="between the LSTM layers")
    parser.add_argument("--output-dropout", type=float, default=0.2, help="before the head")
    parser.add_argument("--repeat", type=int, default=2, help="steps per letter")
    parser.add_argument("--padding", type=int, default=1, help="padding steps after each word")
    parser.add_argument("--batch", type=int, default=64, help="training batch size")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip", type=float, default=5.0, help="clip_grad_norm_'s max_norm")
    parser.add_argument("--train-steps", type=int, default=16)
    parser.add_argument("--infer-batch", default="1,256", help="transcription batch sizes, comma-separated")
    parser.add_argument("--infer-words", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Transcriber(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    train_batches = words(args, args.batch, 1)
    model.train()

    def step(i):
        tokens, lengths, targets, target_lengths = train_batches[i % len(train_batches)]
        log_probs = model(tokens, lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=0,
                          reduction="mean", zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        best_paths(log_probs.detach(), lengths)
        return tokens.shape[0]

    for i in range(3):
        step(i)
    train = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        done = sum(step(i) for i in range(args.train_steps))
        train.append(done / (time.perf_counter() - start))
    rss = peak_rss_mib()

    model.eval()
    transcribe = []
    for batch_size in [int(b) for b in args.infer_batch.split(",")]:
        batches = words(args, batch_size, 2)

        def run(i):
            tokens, lengths, _, _ = batches[i % len(batches)]
            best_paths(model(tokens, lengths), lengths)
            return tokens.shape[0]

        iterations = -(-args.infer_words // batch_size)
        figures = []
        with torch.inference_mode():
            for i in range(max(iterations // 10, 2)):
                run(i)
            for _ in range(args.repeats):
                start = time.perf_counter()
                done = sum(run(i) for i in range(iterations))
                figures.append(done / (time.perf_counter() - start))
        transcribe.append({"batch_size": batch_size, "words_per_s": statistics.median(figures), "repeats": figures})

    report = {"framework": "pytorch", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
              "model": {"vocab_size": args.vocab, "embedding_size": args.embedding, "hidden_size": args.hidden,
                        "num_layers": args.layers, "bidirectional": True, "num_classes": args.classes,
                        "batch_size": args.batch, "letters": list(LETTERS), "repeat": args.repeat,
                        "padding": args.padding, "dropout": args.dropout, "output_dropout": args.output_dropout},
              "train": {"words_per_s": statistics.median(train), "batch_size": args.batch, "repeats": train},
              "transcribe": transcribe, "peak_rss_mib": rss}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"torch {torch.__version__}, {report['threads']} threads")
        print(f"train                 {report['train']['words_per_s']:>9.0f} words/s")
        for t in transcribe:
            print(f"transcribe batch {t['batch_size']:>4} {t['words_per_s']:>9.0f} words/s (greedy)")


if __name__ == "__main__":
    main()
