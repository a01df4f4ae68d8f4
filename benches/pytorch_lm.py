#!/usr/bin/env python3
"""PyTorch's side of the character language-model benchmark, timed the way `bench` times a text config.

  python3 benches/pytorch_lm.py [--json]     defaults: the model of configs/shakespeare.json (vocabulary 65,
                                              embedding 64, LSTM 2 x 512), windows of 128 x batch 64

The model: nn.Embedding(V, E) -> nn.LSTM(E, H, num_layers=L, batch_first=True) -> nn.Linear(H, V) at every
step, no dropout. Parameters start from torch.manual_seed(--seed).

  train      windows of random token ids [batch, window] as inputs and as targets (torch.Generator seeded
             with --seed; 4 windows generated before timing and cycled), the (h, c) state carried from one
             window to the next and detached (truncated backpropagation through time, as PyTorch's
             word_language_model example's `repackage_hidden`), loss = F.cross_entropy over every position,
             torch.optim.Adam(lr=2e-3), clip_grad_norm_(parameters, 5.0), zero_grad / backward / step.
             3 untimed steps, then --repeats timed repeats of --train-steps steps each;
             characters/s = steps x batch x window / seconds (time.perf_counter).
  generate   one stream (batch 1), one character at a time, model.eval() under torch.inference_mode(), the
             state carried from character to character (each repeat starts from a zero state, as `bench`
             does), the next character drawn with torch.multinomial(softmax(logits / 1.0), 1) and fed back
             (word_language_model's generate.py). 20 untimed characters, then --repeats repeats of
             --generate-chars characters; characters/s = characters / seconds.

Each figure is the median of its repeats; the repeats are listed too. FLOPs per character are counted from
the shapes: forward = sum over layers of 2·4H·(in + H) (in = E for the first layer, H after) plus the head
2·H·V; training = 3 x forward (forward, input and weight gradients); generation = forward; GFLOP/s =
characters/s x FLOPs / 1e9. Memory: the process's peak resident set size (VmHWM in /proc/self/status) read
after training, in MiB. Threads: torch.set_num_threads(--threads), default 2.

Prints a summary, or with --json one JSON line: {"framework": "pytorch", "torch_version", "threads",
"model": {...}, "train": {"chars_per_s", "repeats", "flops_per_char", "gflops"}, "generate": {...},
"peak_rss_mib"}. Needs torch: pip install torch.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class CharLstm(nn.Module):
    """Embedding -> LSTM -> Linear at every step."""

    def __init__(self, vocab, embedding, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = nn.LSTM(embedding, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        output, state = self.rnn(self.embedding(tokens), state)
        return self.head(output), state


def flops_per_char(args):
    """(training, generation) FLOPs of one character (see the module's docstring)."""
    forward, width = 0, args.embedding
    for _ in range(args.layers):
        forward += 2 * 4 * args.hidden * (width + args.hidden)
        width = args.hidden
    forward += 2 * args.hidden * args.vocab
    return 3 * forward, forward


def peak_rss_mib():
    """VmHWM of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(warmup, repeats, per_repeat, chars_per_repeat, run):
    """Runs `run(n)` for `warmup` units untimed, then `repeats` times for `per_repeat` units; chars/s of each."""
    run(warmup)
    figures = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(per_repeat)
        figures.append(chars_per_repeat / (time.perf_counter() - start))
    return figures


def report(figures, flops):
    median = statistics.median(figures)
    return {"chars_per_s": median, "repeats": figures, "flops_per_char": flops, "gflops": median * flops / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=65, help="vocabulary size V (Tiny Shakespeare: 65)")
    parser.add_argument("--embedding", type=int, default=64, help="embedding size E")
    parser.add_argument("--hidden", type=int, default=512, help="LSTM hidden size H")
    parser.add_argument("--layers", type=int, default=2, help="LSTM layers L")
    parser.add_argument("--batch", type=int, default=64, help="training streams per window")
    parser.add_argument("--window", type=int, default=128, help="characters per training window")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=20, help="training windows per timed repeat")
    parser.add_argument("--generate-chars", type=int, default=500, help="characters generated per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    if min(args.train_steps, args.generate_chars, args.repeats, args.batch, args.window) < 1:
        parser.error("--train-steps, --generate-chars, --repeats, --batch and --window must be at least 1")
    torch.set_num_threads(args.threads)
    train_flops, generate_flops = flops_per_char(args)

    torch.manual_seed(args.seed)
    model = CharLstm(args.vocab, args.embedding, args.hidden, args.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(args.seed)
    windows = [(torch.randint(0, args.vocab, (args.batch, args.window), generator=generator),
                torch.randint(0, args.vocab, (args.batch, args.window), generator=generator))
               for _ in range(4)]

    # Training: truncated BPTT over the cycled windows, the state detached between windows.
    model.train()
    carried = {"state": None, "step": 0}

    def train(steps):
        for _ in range(steps):
            inputs, targets = windows[carried["step"] % len(windows)]
            carried["step"] += 1
            state = carried["state"]
            if state is not None:
                state = tuple(s.detach() for s in state)
            optimizer.zero_grad()
            logits, carried["state"] = model(inputs, state)
            loss = F.cross_entropy(logits.reshape(-1, args.vocab), targets.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

    train_figures = timed(3, args.repeats, args.train_steps, args.train_steps * args.batch * args.window, train)
    rss = peak_rss_mib()

    # Generation: one character at a time, drawn from the softmax and fed back.
    model.eval()
    draw = torch.Generator().manual_seed(args.seed + 1)

    def generate(chars):
        token = torch.zeros(1, 1, dtype=torch.long)
        state = None
        for _ in range(chars):
            logits, state = model(token, state)
            probabilities = F.softmax(logits.reshape(-1) / 1.0, dim=0)
            token.fill_(torch.multinomial(probabilities, 1, generator=draw)[0])

    with torch.inference_mode():
        generate_figures = timed(20, args.repeats, args.generate_chars, args.generate_chars, generate)

    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": {"cell": "lstm", "vocab_size": args.vocab, "embedding_size": args.embedding,
                  "hidden_size": args.hidden, "num_layers": args.layers, "num_classes": args.vocab,
                  "window": args.window, "batch_size": args.batch},
        "train": report(train_figures, train_flops),
        "generate": report(generate_figures, generate_flops),
        "peak_rss_mib": rss,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"torch {torch.__version__}, {result['threads']} threads: Embedding {args.vocab}->{args.embedding} "
          f"-> LSTM {args.layers}x{args.hidden} -> Linear {args.vocab}, windows of {args.window} x batch "
          f"{args.batch}; median of {args.repeats} repeats")
    print(f"train     {result['train']['chars_per_s']:>9.0f} chars/s  ({result['train']['gflops']:.1f} GFLOP/s)")
    print(f"generate  {result['generate']['chars_per_s']:>9.0f} chars/s  "
          f"({result['generate']['gflops']:.2f} GFLOP/s, batch 1)")
    print(f"peak RSS after training {rss:.0f} MiB")


if __name__ == "__main__":
    main()
