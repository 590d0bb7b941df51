"""07 - Sequence to sequence with teacher forcing (phase 06, week 9)

Goal: build an encoder-decoder GRU that reverses digit strings of varying length: padding,
      BOS/EOS tokens, a masked loss, teacher forcing in training and greedy decoding at
      inference; prove the two decoding paths agree and that padding changes nothing, then
      watch accuracy fall with length, the price of squeezing a whole string into one vector.
Run:  python phase06-rnn/07-seq2seq.py            (3000 steps; 20 s on a busy 2-core CPU)
      python phase06-rnn/07-seq2seq.py --quick    (seconds, offline, used by the tests)
Expect: teacher-forced logits on the greedy output equal the greedy step logits (max |diff| 0 on
        the CPU), the masked loss equals a per-string reference (~2e-7) and ignores garbage at
        PAD exactly, a padded string encodes as it does alone (~6e-8). Seed 0 full: validation
        picks step 3000 (exact 0.935); test, measured once, token acc 0.976, exact 0.924,
        falling with length: token 1.000 at 3 digits, 0.925 at 8 (exact 1.000 vs 0.683).
        Quick (200 steps, seeds 0-4): test token acc 0.75-0.79, at 8 digits 0.55-0.61 vs >= 0.98
        at 3. seq2seq.png shows the training curves and the accuracy by length.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 3000         # optimiser steps, one fresh batch each (full run)
QUICK_STEPS = 200    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import copy
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# --- the task: reverse a string of digits -------------------------------------------------
PAD, BOS, EOS = 0, 1, 2   # special tokens; PAD = 0 so that nn.Embedding(padding_idx=0) fits
DIGITS = 10               # digit d is token FIRST_DIGIT + d
FIRST_DIGIT = 3
VOCAB = FIRST_DIGIT + DIGITS   # 13 tokens in all, for source and target alike
TRAIN_LENGTHS = (3, 8)    # training strings have 3..8 digits, drawn uniformly (inclusive)

# --- model and training -------------------------------------------------------------------
EMBED = 32           # token embedding size
HIDDEN = 64          # decoder state size; the bidirectional encoder has HIDDEN // 2 per direction,
                     # so its two final states together are one HIDDEN-sized vector: the bottleneck
BATCH = 64           # strings per step
LR = 3e-3            # Adam learning rate
CLIP = 1.0           # gradient-norm clip: RNN gradients spike now and then (lesson 03)
EVALS = 10           # validation passes during training; the best one is kept
N_VAL = 1000         # validation strings (select the checkpoint)
N_TEST = 3000        # test strings (measured once, at the end)
QUICK = dict(EVALS=4, N_VAL=300, N_TEST=600)   # --quick: smaller evaluation sets
EVAL_BATCH = 500     # strings per greedy-decoding batch in evaluation

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2, "check": 3}   # one random stream per split


def splits_generator(seed, split):
    """A torch.Generator for one split: the same seed gives the same strings in every lesson
    and on every device (generated on the CPU), and the splits never share a stream."""
    return torch.Generator().manual_seed(seed * len(SPLIT_SEEDS) + SPLIT_SEEDS[split])


def random_strings(n, lengths, gen):
    """n random digit strings as token lists, each length uniform in lengths = (lo, hi)."""
    lo, hi = lengths
    sizes = torch.randint(lo, hi + 1, (n,), generator=gen).tolist()
    return [torch.randint(FIRST_DIGIT, FIRST_DIGIT + DIGITS, (k,), generator=gen).tolist()
            for k in sizes]


def task(source):
    """The transduction: the target is the source reversed."""
    return source[::-1]


def to_text(tokens):
    """Token list -> readable string: digits as digits, EOS as '.', stops at the first EOS."""
    out = []
    for t in tokens:
        if t == EOS:
            return "".join(out) + "."
        out.append(str(t - FIRST_DIGIT) if t >= FIRST_DIGIT else "?")
    return "".join(out)


class Batch(NamedTuple):
    src: torch.Tensor       # (B, S) source tokens, PAD after each string's end
    lengths: torch.Tensor   # (B,) source lengths, on the CPU where pack_padded_sequence wants them
    tgt_in: torch.Tensor    # (B, T) decoder input: BOS, y1, ..., yn (teacher forcing)
    tgt_out: torch.Tensor   # (B, T) what to predict: y1, ..., yn, EOS; T = S + 1


def pad(rows, width):
    """List of token lists -> (len(rows), width) tensor, PAD at the right."""
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows], dtype=torch.long)


def shift_right(tgt_out):
    """The decoder's input in teacher forcing: BOS, then the target shifted right by one, so
    that position t sees y_1..y_{t-1} and must predict y_t. (The last target token, EOS or
    PAD, is never an input: nothing is predicted after it.)"""
    # EXERCISE shift_right: prepend a column of BOS and drop the last target column: (B, T) in, (B, T) out
    bos = torch.full_like(tgt_out[:, :1], BOS)                 # (B, 1)
    return torch.cat([bos, tgt_out[:, :-1]], dim=1)            # (B, T)
    # END EXERCISE


def make_batch(sources, device):
    """Pad a list of source strings and build the teacher-forcing tensors."""
    targets = [task(s) + [EOS] for s in sources]
    width = max(len(s) for s in sources)
    tgt_out = pad(targets, width + 1)                          # (B, S + 1)
    return Batch(pad(sources, width).to(device), torch.tensor([len(s) for s in sources]),
                 shift_right(tgt_out).to(device), tgt_out.to(device))


# --- the model ----------------------------------------------------------------------------
class Memory(NamedTuple):
    """What the encoder hands the decoder."""
    states: torch.Tensor    # (B, S, H) encoder output at every source position, 0 at PAD
    mask: torch.Tensor      # (B, S) True at real source tokens, False at PAD
    final: torch.Tensor     # (1, B, H) both directions' final states: the decoder's start state


class Seq2Seq(nn.Module):
    """Encoder-decoder without attention: the decoder sees the source only through the
    encoder's final state. `decode` runs the decoder over any number of input tokens from a
    given state; teacher forcing calls it once on the whole shifted target, greedy decoding
    calls it once per step on its own last prediction. Lesson 08 overrides `decode`."""

    def __init__(self, vocab=VOCAB, embed=EMBED, hidden=HIDDEN):
        super().__init__()
        assert hidden % 2 == 0, "hidden splits into two directions of hidden // 2"
        self.src_embed = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.encoder = nn.GRU(embed, hidden // 2, batch_first=True, bidirectional=True)
        self.decoder = nn.GRU(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def encode(self, src, lengths):
        # packing makes the GRU stop at each string's own end: without it the forward
        # direction's final state would have read the PADs, and the backward one would start
        # from them
        packed = pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, final = self.encoder(packed)                   # final: (2, B, H/2)
        states, _ = pad_packed_sequence(states, batch_first=True,
                                        total_length=src.shape[1])   # (B, S, H), 0 at PAD
        final = torch.cat([final[0], final[1]], dim=-1).unsqueeze(0)  # (1, B, H)
        return Memory(states, src != PAD, final)

    def decode(self, tokens, state, memory):
        """tokens (B, T) from `state` (1, B, H) -> logits (B, T, V), the new state."""
        outputs, state = self.decoder(self.tgt_embed(tokens), state)   # (B, T, H)
        return self.out(outputs), state

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: every target position at once, fed the true previous token."""
        memory = self.encode(src, lengths)
        logits, _ = self.decode(tgt_in, memory.final, memory)
        return logits                                          # (B, T, V)


@torch.no_grad()
def greedy_decode(model, src, lengths, steps):
    """Inference: start from BOS and feed back the arg-max, one step at a time.
    Returns the tokens (B, steps) and each step's logits (B, steps, V)."""
    # EXERCISE greedy_decode: encode once; from memory.final and a (B, 1) column of BOS, call model.decode one step at a time, feeding back its own arg-max; concatenate tokens and logits on dim 1
    memory = model.encode(src, lengths)
    state = memory.final
    token = torch.full((src.shape[0], 1), BOS, dtype=torch.long, device=src.device)   # (B, 1)
    tokens, logits = [], []
    for _ in range(steps):
        step_logits, state = model.decode(token, state, memory)   # (B, 1, V)
        token = step_logits.argmax(dim=-1)                      # (B, 1): its own prediction
        tokens.append(token)
        logits.append(step_logits)
    return torch.cat(tokens, dim=1), torch.cat(logits, dim=1)
    # END EXERCISE


def masked_cross_entropy(logits, targets):
    """Mean cross-entropy over the real target tokens only (EOS included, PAD excluded).
    logits (B, T, V), targets (B, T). A plain mean over B*T would count the PAD positions,
    pulling the model towards predicting PAD after EOS and weighting short strings less."""
    # EXERCISE masked_cross_entropy: per-token -log softmax at the target, times a mask that is 1 where targets != PAD; sum / number of real tokens
    nll = -logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    mask = (targets != PAD).to(nll.dtype)                      # (B, T): 1 real, 0 padding
    return (nll * mask).sum() / mask.sum()
    # END EXERCISE


# --- training and evaluation (lesson 08 trains its models with these) --------------------
@torch.no_grad()
def evaluate(model, sources, device):
    """Greedy-decode every source; token accuracy (over target tokens, EOS included) and
    exact-sequence accuracy (every token right, stopping at the right place)."""
    model.eval()
    hits = tokens = exact = 0
    for i in range(0, len(sources), EVAL_BATCH):
        b = make_batch(sources[i:i + EVAL_BATCH], device)
        pred, _ = greedy_decode(model, b.src, b.lengths, b.tgt_out.shape[1])   # (B, T)
        real = b.tgt_out != PAD
        right = (pred == b.tgt_out) & real
        hits += right.sum().item()
        tokens += real.sum().item()
        exact += (right.sum(1) == real.sum(1)).sum().item()
    model.train()
    return {"token_acc": hits / tokens, "exact_acc": exact / len(sources)}


def accuracy_by_length(model, sources, device):
    """{length: evaluate(...)} for each source length present."""
    lengths = sorted({len(s) for s in sources})
    return {n: evaluate(model, [s for s in sources if len(s) == n], device) for n in lengths}


def train(model, run, steps, val_sources, evals, log=print, label="model"):
    """Adam on fresh batches of training strings (the same stream for every model of a run,
    so models compared in lesson 08 see the same data); validate `evals` times and keep the
    checkpoint with the best validation exact accuracy. Returns the history."""
    gen = splits_generator(run.seed, "train")
    opt = torch.optim.Adam(model.parameters(), lr=LR, foreach=True)   # one op for all tensors
    every = max(1, steps // evals)
    hist = {"step": [], "loss": [], "val_step": [], "val_token_acc": [], "val_exact_acc": []}
    best, best_state = (-1.0, -1.0), None
    model.train()
    for step in range(1, steps + 1):
        b = make_batch(random_strings(BATCH, TRAIN_LENGTHS, gen), run.device)
        loss = masked_cross_entropy(model(b.src, b.lengths, b.tgt_in), b.tgt_out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        hist["step"].append(step)
        hist["loss"].append(loss.item())
        if step % every == 0 or step == steps:
            val = evaluate(model, val_sources, run.device)
            hist["val_step"].append(step)
            hist["val_token_acc"].append(val["token_acc"])
            hist["val_exact_acc"].append(val["exact_acc"])
            log(f"  {label} step {step:5d}  train loss {loss.item():.3f}  "
                f"val token acc {val['token_acc']:.3f}  exact {val['exact_acc']:.3f}")
            score = (val["exact_acc"], val["token_acc"])
            if score > best:
                best, best_state = score, copy.deepcopy(model.state_dict())
                hist["best_step"], hist["best_val"] = step, val
    model.load_state_dict(best_state)
    return hist


# --- self-checks --------------------------------------------------------------------------
def check_masked_loss(run):
    """The masked loss against a per-string reference, and blind to what sits at PAD."""
    gen = torch.Generator().manual_seed(run.seed)
    b = make_batch([[5, 7], [3, 9, 4, 8, 6], [12, 3, 3]], run.device)   # lengths 2, 5, 3
    B, T = b.tgt_out.shape
    logits = torch.randn(B, T, VOCAB, generator=gen).to(run.device).requires_grad_()
    loss = masked_cross_entropy(logits, b.tgt_out)
    # reference: each string on its own, unpadded, summed by the library, over all tokens
    total = sum(F.cross_entropy(logits[i, :n + 1], b.tgt_out[i, :n + 1], reduction="sum")
                for i, n in enumerate(b.lengths.tolist()))
    check.close("masked loss vs per-string cross-entropy (unpadded), token mean", loss,
                total / (b.lengths + 1).sum(), atol=1e-6)
    pad = b.tgt_out == PAD                                     # (B, T): 3 + 0 + 2 positions
    garbage = logits.detach().clone()
    garbage[pad] += 50 * torch.randn(int(pad.sum()), VOCAB, generator=gen).to(run.device)
    check.equal("masked loss with garbage logits at the PAD positions (unchanged)",
                masked_cross_entropy(garbage, b.tgt_out).item(), loss.item())
    loss.backward()
    check.equal("gradient of the masked loss at PAD positions (all exactly 0)",
                logits.grad[pad].abs().max().item(), 0.0)


def check_encoder_padding(run, model):
    """A padded string encodes exactly as it does alone: final state and states agree."""
    sources = random_strings(5, TRAIN_LENGTHS, torch.Generator().manual_seed(run.seed + 7))
    sources[0] = sources[0][:TRAIN_LENGTHS[0]]                 # make sure lengths differ
    sources[1] = sources[1] + [FIRST_DIGIT] * (TRAIN_LENGTHS[1] - len(sources[1]))
    b = make_batch(sources, run.device)
    with torch.no_grad():
        batched = model.encode(b.src, b.lengths)
        alone = [model.encode(b.src[i:i + 1, :n], b.lengths[i:i + 1])
                 for i, n in enumerate(b.lengths.tolist())]
    alone_final = torch.cat([a.final for a in alone], dim=1)   # (1, B, H)
    check.close(f"encoder final state: padded batch (lengths {b.lengths.tolist()}) vs each "
                "string alone", batched.final, alone_final, atol=1e-5)
    states = torch.zeros_like(batched.states)
    for i, a in enumerate(alone):
        states[i, :a.states.shape[1]] = a.states[0]
    check.close("encoder states at every position (0 at PAD) vs each string alone",
                batched.states, states, atol=1e-5)


def check_teacher_forcing_matches_greedy(model, b, name="seq2seq"):
    """Greedy decoding feeds the decoder its own previous arg-max; teacher forcing feeds
    shift_right(target). Teacher-force the greedy output itself and the inputs are the same
    tokens at the same positions, so the logits must agree step for step; an input not
    shifted, or shifted the wrong way, feeds different tokens and cannot pass."""
    steps = b.tgt_out.shape[1]
    tokens, step_logits = greedy_decode(model, b.src, b.lengths, steps)
    model.eval()
    with torch.no_grad():
        forced = model(b.src, b.lengths, shift_right(tokens))  # (B, steps, V)
    model.train()
    check.close(f"{name}: teacher-forced logits on the greedy output vs greedy step logits "
                f"({b.src.shape[0]} strings x {steps} steps)", forced, step_logits,
                atol=1e-4, rtol=1e-4)
    return tokens


# --- figure -------------------------------------------------------------------------------
def plot_training(run, hist, by_length, name="seq2seq.png"):
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2), layout="constrained")
    axes[0].plot(hist["step"], hist["loss"], lw=0.7, color="tab:gray", label="train loss")
    axes[0].set(xlabel="step", ylabel="masked cross-entropy (nats/token)", yscale="log",
                title="teacher-forced training loss, greedy validation accuracy")
    twin = axes[0].twinx()
    twin.plot(hist["val_step"], hist["val_token_acc"], "o-", color="tab:blue",
              label="val token acc")
    twin.plot(hist["val_step"], hist["val_exact_acc"], "s-", color="tab:red",
              label="val exact acc")
    twin.set(ylabel="accuracy", ylim=(0, 1.02))
    twin.legend(loc="center right")
    lengths = list(by_length)
    axes[1].plot(lengths, [by_length[n]["token_acc"] for n in lengths], "o-", label="token")
    axes[1].plot(lengths, [by_length[n]["exact_acc"] for n in lengths], "s-",
                 label="exact sequence")
    axes[1].set(xlabel="source length (digits)", ylabel="test accuracy", ylim=(0, 1.02),
                title="one fixed-size state for the whole string: longer is harder")
    axes[1].legend(loc="lower left")
    return plot.save(fig, run, name)


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)   # the same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False   # cuDNN's GRU may use TF32 on a GPU by default:
                                              # ~1e-3 errors would swamp the exact checks
    q = QUICK if run.quick else {}
    evals, n_val, n_test = (q.get(k, globals()[k]) for k in ("EVALS", "N_VAL", "N_TEST"))
    data.announce("random digit strings -> reversed", "generated",
                  detail=f"lengths {TRAIN_LENGTHS[0]}-{TRAIN_LENGTHS[1]}, a fresh batch of "
                         f"{BATCH} per step; {n_val} validation and {n_test} test strings")
    b = make_batch([[3, 4, 5], [6, 7]], "cpu")
    print(f"one batch: src {b.src.tolist()}  lengths {b.lengths.tolist()}\n"
          f"           tgt_in {b.tgt_in.tolist()}  (BOS={BOS}, PAD={PAD})\n"
          f"           tgt_out {b.tgt_out.tolist()}  (EOS={EOS})")

    check_masked_loss(run)
    torch.manual_seed(run.seed)
    model = Seq2Seq().to(run.device)
    check_encoder_padding(run, model)

    val = random_strings(n_val, TRAIN_LENGTHS, splits_generator(run.seed, "val"))
    test = random_strings(n_test, TRAIN_LENGTHS, splits_generator(run.seed, "test"))
    print(f"training {sum(p.numel() for p in model.parameters())} parameters for {run.steps} steps")
    hist = train(model, run, run.steps, val, evals)
    print(f"chosen on validation: step {hist['best_step']}")

    probe = make_batch(random_strings(64, TRAIN_LENGTHS, splits_generator(run.seed, "check")),
                       run.device)
    tokens = check_teacher_forcing_matches_greedy(model, probe)
    for i in range(4):
        src = probe.src[i, :probe.lengths[i]].tolist()
        print(f"  {to_text(src):>10} -> {to_text(tokens[i].tolist()):<11} "
              f"(want {to_text(task(src) + [EOS])})")

    # test, once: overall and by length
    result = evaluate(model, test, run.device)
    by_length = accuracy_by_length(model, test, run.device)
    print(f"test (measured once): token acc {result['token_acc']:.3f}  "
          f"exact acc {result['exact_acc']:.3f}")
    for n, r in by_length.items():
        print(f"  length {n}: token acc {r['token_acc']:.3f}  exact {r['exact_acc']:.3f}")
    chance = 1 / DIGITS
    check.greater(f"test token accuracy vs 4 x chance ({chance:.1f}: guessing a digit)",
                  result["token_acc"], 4 * chance)
    lo, hi = TRAIN_LENGTHS
    check.less(f"test token accuracy at length {hi} vs length {lo} (the bottleneck)",
               by_length[hi]["token_acc"], by_length[lo]["token_acc"])
    plot_training(run, hist, by_length)
    return cli.finish(run, {
        "steps": hist["step"][-1], "best_step": hist["best_step"],
        "val_token_acc": hist["best_val"]["token_acc"],
        "val_exact_acc": hist["best_val"]["exact_acc"],
        "test_token_acc": result["token_acc"], "test_exact_acc": result["exact_acc"],
        f"test_token_acc_len{lo}": by_length[lo]["token_acc"],
        f"test_token_acc_len{hi}": by_length[hi]["token_acc"],
        f"test_exact_acc_len{lo}": by_length[lo]["exact_acc"],
        f"test_exact_acc_len{hi}": by_length[hi]["exact_acc"]}, answers={
        "bottleneck": ("shorter" if by_length[lo]["token_acc"] > by_length[hi]["token_acc"]
                       else "longer", f"test token accuracy: length {lo} "
                       f"{by_length[lo]['token_acc']:.3f}, length {hi} "
                       f"{by_length[hi]['token_acc']:.3f} (seq2seq.png, right)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.07`) before running it;
# `python -m dlcourse check 06.07` compares your answers with what the run measures.
# PREDICT bottleneck (shorter / longer): the decoder sees the source only through one final state: which strings does it reverse more accurately, the shortest or the longest of the training lengths?
# ANSWER bottleneck:
# More to think about before running:
# 1. Training loss is computed with teacher forcing, accuracy with greedy decoding. Which
#    will look better early in training, and why can they disagree?
# 2. Which source digit does the decoder get right most often, the first or the last it emits?
# 3. Double HIDDEN: which lengths gain most?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
