"""Capstone 1 - a character-level language model (phase 06, week 9)

Goal: train an LSTM to predict the next character of tiny Shakespeare with truncated
      backpropagation through time (parallel streams, state carried from window to window),
      report validation loss in nats and bits per character, and sample text at two
      temperatures with a sampler that is checked against the formula it implements.
Run:  python phase06-rnn/capstone-char-lm.py            (tiny Shakespeare; the CPU preset: 2 min
                                                       measured on 2 cores, up to ~5 min on a laptop)
      python phase06-rnn/capstone-char-lm.py --quick    (seconds, offline, used by the tests)
      python phase06-rnn/capstone-char-lm.py --sample-from outputs/phase06-rnn/capstone-char-lm/char-lm.pt
                                                       (samples from the saved model, no training)
Data: online, tiny Shakespeare through the course's data manifest (sha256-checked); offline and
      with --quick, the REAL English prose of the Python documentation that ships with every
      Python (pydoc_data.topics, ~465 KB), announced as the stand-in: its numbers are not
      Shakespeare's. 90/10 contiguous train/validation split of the characters.
Expect: --quick (40 steps of a 64-unit LSTM, seeds 0-4) on the Python docs: 3.05-3.11 nats/char
        (4.40-4.49 bits), below the unigram baseline (3.24 nats) and ln(vocab) = ln 103 = 4.63;
        the samples are still gibberish. (--quick reads tiny Shakespeare instead when an earlier
        run left it in the data folder: 2.88-2.99 nats/char, unigram 3.35, ln 65 = 4.17.)
        Full CPU preset: a 1-layer 256-unit LSTM, 3000 steps of 32 streams x 100 characters
        (9.6 M characters, ~10 passes over the 1.0 M training characters).
        Measured here (seed 0, tiny Shakespeare, a quiet 2-core Xeon server CPU, 2 torch
        threads, 2 Dec 2026): validation 1.506 nats/char = 2.17 bits/char, training 122 s
        (126 s wall with start-up); val loss 2.09 after 100 steps, 1.61 after 1000, 1.54 after
        2000; the T = 0.5 sample keeps the play layout (NAME:, verse lines) with mostly real
        words ("Good morrow, neighbour Baptisty some reasons!"), T = 1.0 invents more words.
        A laptop CPU of similar speed takes about the same; a slower or busy one up to ~5 min.
        For scale: nanoGPT's CPU recipe (a 4-layer Transformer, 2,000 iterations) reports 1.88
        validation loss (nats/char) in about 3 minutes on a laptop CPU; this LSTM reached 1.61
        at 40 s and 1.51 at 2 min here, so on a CPU budget of minutes the LSTM is the better
        character model (different hardware: compare the order, not the decimals; the
        Transformer wins once it can be trained longer and larger, phase 7 and phase 12).
"""
from dlcourse import cli

STEPS = 3000         # optimiser steps, full run (the CPU preset)
QUICK_STEPS = 40     # --quick


def parse_args(argv=None):
    p = cli.parser(__doc__, steps=(STEPS, QUICK_STEPS))
    p.add_argument("--sample-from", metavar="CHECKPOINT", default=None,
                   help="load a checkpoint this lesson saved and only sample from it (no training)")
    return p.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import CourseError, check, data, plot, train
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend


@dataclass
class Config:
    embed: int = 64          # character embedding size
    hidden: int = 256        # LSTM units
    layers: int = 1          # stacked LSTM layers (one wide layer is faster per loss on a CPU)
    batch: int = 32          # parallel streams, read side by side
    bptt: int = 100          # truncated-BPTT window: gradients flow back at most this many chars
    lr: float = 3e-3         # Adam learning rate, cosine-decayed to a tenth over the run
    clip: float = 1.0        # max gradient norm (LSTMs occasionally spike)
    eval_every: int = 100    # steps between validation points on the loss curve
    eval_windows: int = 10   # validation windows per curve point (the final loss uses them all)
    sample_chars: int = 500  # characters sampled at each temperature


FULL = Config()
QUICK = Config(embed=16, hidden=64, batch=16, bptt=32, lr=1e-2, eval_every=10, eval_windows=5,
               sample_chars=200)   # --quick: the same code, small enough for seconds
VAL_FRACTION = 0.1       # last 10% of the text is validation (contiguous, never trained on)
TEMPERATURES = (0.5, 1.0)   # sampling temperatures shown
PROMPT_CHARS = 40        # the samples continue the first characters of the validation text
CHECK_T = (0.5, 1.5)     # temperatures for the sampler's formula check (both sides of 1)
N_DRAWS = 20_000         # draws for the sampler's frequency test
SIGMAS = 5               # frequency test: allowed |observed - expected| in standard errors
CHECKPOINT = "char-lm.pt"


def tolerance(device):
    """float32 on the CPU; GPUs may use TF32 / reordered sums."""
    return 1e-5 if device.type == "cpu" else 1e-3


# ------------------------------------------------------------------ data

def load_text(run):
    """Tiny Shakespeare when it can be had; else the Python docs' prose, announced as stand-in."""
    path = data.fetch("tinyshakespeare", offline=run.offline)
    if path is not None:
        text = path.read_text(encoding="utf-8")
        data.announce("Tiny Shakespeare", "downloaded", detail=f"{len(text):,} characters")
        return text
    from pydoc_data.topics import topics   # the standard library's help() texts
    text = "\n".join(topics[key] for key in sorted(topics))
    data.announce("Python documentation topics (pydoc_data, standard library)", "bundled",
                  stand_in_for="Tiny Shakespeare", detail=f"{len(text):,} characters of English")
    return text


def make_streams(ids, batch):
    """Cut a 1-D tensor into `batch` contiguous streams, one per row: (batch, L). Row b is
    characters [b*L, (b+1)*L) of the text, so moving right along a row is reading on."""
    L = len(ids) // batch
    return ids[: batch * L].view(batch, L)


def batch_at(streams, k, bptt):
    """The k-th window of every stream: inputs x and targets y, both (batch, bptt), y being
    the next character of x. Window k+1 starts where window k stopped, in the same row, so the
    state left by window k is the right starting state for window k+1. Returns x, y and the
    start column (0 when the windows wrap around, where the state must be reset)."""
    # EXERCISE batch_at: n_windows = (L - 1) // bptt; window k starts at column (k mod n_windows) * bptt; x is bptt columns from there, y the same shifted one column right
    n_windows = (streams.shape[1] - 1) // bptt
    start = (k % n_windows) * bptt
    x = streams[:, start:start + bptt]                                    # (B, bptt)
    y = streams[:, start + 1:start + bptt + 1]                            # (B, bptt)
    return x, y, start
    # END EXERCISE


# ------------------------------------------------------------------ model, loss, sampling

class CharLSTM(nn.Module):
    def __init__(self, vocab, cfg):
        super().__init__()
        self.embed = nn.Embedding(vocab, cfg.embed)
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, vocab)

    def forward(self, x, state=None):
        """x (B, T) character ids, state (h, c) or None -> logits (B, T, V), new state."""
        h, state = self.lstm(self.embed(x), state)                        # (B, T, hidden)
        return self.head(h), state


def detach_state(state):
    """Keep the values of (h, c), drop the graph behind them: the next window's backward
    stops here (that is what makes the backpropagation through time 'truncated')."""
    return tuple(s.detach() for s in state)


def step_through(model, x, state):
    """One window: run from the carried state; return the logits (with their graph, for this
    window's loss) and the new state, detached, for the next window."""
    # EXERCISE step_through: run the model from the carried state; return the logits as they are and the new state detached (detach_state)
    logits, state = model(x, state)
    return logits, detach_state(state)
    # END EXERCISE


def nats_per_char(logits, targets):
    """Mean cross-entropy in nats (natural log) per predicted character."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def to_bits(nats):
    """log2 p = ln p / ln 2, so bits per character = nats per character / ln 2."""
    return nats / math.log(2)


def next_char_probs(logits, temperature):
    """softmax(logits / T): T < 1 sharpens the distribution, T > 1 flattens it."""
    return F.softmax(logits / temperature, dim=-1)


def sample_next(logits, temperature, gen):
    """One character id per row of logits (N, V); temperature 0 means greedy (arg-max)."""
    # EXERCISE sample_next: on the CPU in float: T = 0 -> arg-max; else draw one id per row with torch.multinomial from next_char_probs(logits, T), using gen
    logits = logits.float().cpu()          # sample on the CPU: one generator on any device
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = next_char_probs(logits, temperature)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    # END EXERCISE


@torch.no_grad()
def generate(model, prompt_ids, n, temperature, gen, device):
    """Feed the prompt, then n times: sample a character and feed it back in."""
    model.eval()
    logits, state = model(prompt_ids.to(device)[None])                    # (1, P, V)
    out = []
    for _ in range(n):
        nxt = sample_next(logits[:, -1], temperature, gen)                # (1,)
        out.append(nxt.item())
        logits, state = model(nxt.to(device)[None], state)                # (1, 1, V)
    return out


@torch.no_grad()
def evaluate(model, streams, bptt, max_windows=None):
    """Mean nats per character over the streams, window by window, with the state carried
    across windows exactly as in training."""
    model.eval()
    device = next(model.parameters()).device
    n_windows = (streams.shape[1] - 1) // bptt
    if max_windows is not None:
        n_windows = min(n_windows, max_windows)
    state, total, count = None, 0.0, 0
    for k in range(n_windows):
        x, y, _ = batch_at(streams, k, bptt)
        x, y = x.to(device), y.to(device)
        logits, state = step_through(model, x, state)
        total += nats_per_char(logits, y).item() * y.numel()
        count += y.numel()
    model.train()
    return total / count


# ------------------------------------------------------------------ checks of the pieces

def check_batching(train_ids, cfg):
    """Run the batching on the POSITIONS 0..N-1 instead of the characters: each entry then
    says where in the text it came from."""
    pos = make_streams(torch.arange(len(train_ids)), cfg.batch)
    x0, y0, _ = batch_at(pos, 0, cfg.bptt)
    x1, _, _ = batch_at(pos, 1, cfg.bptt)
    streams = make_streams(train_ids, cfg.batch)
    x, y, _ = batch_at(streams, 0, cfg.bptt)
    check.equal("inputs are the text at their positions", x, train_ids[x0])
    check.equal("targets are the text one character after the inputs", y, train_ids[x0 + 1])
    check.equal("target positions - input positions (all entries)",
                (y0 - x0).unique().tolist(), [1])
    check.equal("window k+1 continues window k in the same row (position of its first input "
                "- last input of k, per row)", (x1[:, 0] - x0[:, -1]).unique().tolist(), [1])


def check_state_is_cut(model, streams, cfg, device):
    x, y, _ = batch_at(streams, 0, cfg.bptt)
    logits, state = step_through(model, x.to(device), None)
    nats_per_char(logits, y.to(device)).backward()
    model.zero_grad(set_to_none=True)
    check.true("carried state is detached (no graph reaches back into the previous window)",
               all(s.grad_fn is None and not s.requires_grad for s in state),
               f"grad_fn of h, c: {[type(s.grad_fn).__name__ for s in state]}")


def check_loss_units(model, val_streams, vocab, cfg, device, tol):
    x, y, _ = batch_at(val_streams, 0, cfg.bptt)
    x, y = x.to(device), y.to(device)
    uniform = torch.zeros(*y.shape, vocab, device=device)                 # equal logits
    check.close(f"loss of a uniform model vs ln(vocab) = ln {vocab}",
                nats_per_char(uniform, y).item(), math.log(vocab), atol=tol)
    with torch.no_grad():
        logits, _ = model(x)
        p_all = F.softmax(logits.cpu().double(), dim=-1)     # float64 on the CPU (MPS has none)
        p_target = p_all.gather(-1, y.cpu()[..., None])                        # (B, T, 1)
        direct_bits = -torch.log2(p_target).mean().item()   # bits straight from log base 2
        nats = nats_per_char(logits, y).item()
    check.close("to_bits(nats per char) vs -mean log2 p(target)", to_bits(nats), direct_bits,
                atol=tol)


def check_sampler(logits_row, gen, tol):
    """logits_row (V,): the sampler against the formula it should implement."""
    z = logits_row.double().cpu()
    p1 = torch.softmax(z, dim=0)   # tempering = raising the T = 1 distribution to the power 1/T
    for T in CHECK_T:
        expected = p1 ** (1 / T) / (p1 ** (1 / T)).sum()
        check.close(f"next_char_probs at T = {T} vs p^(1/T) / sum p^(1/T)",
                    next_char_probs(logits_row.cpu(), T), expected, atol=tol)
    rows = logits_row.cpu()[None] + torch.randn(64, len(z), generator=gen)   # 64 varied rows
    greedy = rows.argmax(dim=-1)
    check.equal("sample_next at T = 0 is the arg-max (64 rows)", sample_next(rows, 0, gen), greedy)
    check.equal("sample_next at T = 1e-8 draws the arg-max (64 rows)",
                sample_next(rows, 1e-8, gen), greedy)
    T = CHECK_T[0]
    draws = sample_next(logits_row.expand(N_DRAWS, -1), T, gen)
    counts = torch.bincount(draws, minlength=len(z)).double()
    p = next_char_probs(logits_row.double().cpu(), T)
    big = N_DRAWS * p >= 10          # bins with enough expected draws for a normal approximation
    obs = torch.cat([counts[big], counts[~big].sum()[None]])
    exp = N_DRAWS * torch.cat([p[big], p[~big].sum()[None]])
    z_scores = (obs - exp) / torch.sqrt(exp * (1 - exp / N_DRAWS)).clamp_min(1e-12)
    check.less(f"{N_DRAWS} draws at T = {T}: largest |count - N p| in standard errors "
               f"({int(big.sum())} bins + the rest)", z_scores.abs().max(), SIGMAS)


# ------------------------------------------------------------------ training

def train_lm(model, train_streams, val_streams, cfg, steps, device):
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg.lr / 10)
    curve = {"step": [], "train": [], "val": []}
    state, running, seen, fresh_starts = None, 0.0, 0, 0
    started = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        x, y, start = batch_at(train_streams, step - 1, cfg.bptt)
        if start == 0:
            state = None       # back at the start of every stream: nothing to carry over
        fresh_starts += state is None
        logits, state = step_through(model, x.to(device), state)
        loss = nats_per_char(logits, y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        running += loss.item()
        seen += 1
        if step % cfg.eval_every == 0 or step == steps:
            val = evaluate(model, val_streams, cfg.bptt, cfg.eval_windows)
            curve["step"].append(step)
            curve["train"].append(running / seen)
            curve["val"].append(val)
            print(f"step {step}/{steps}  train {running / seen:.3f}  val {val:.3f} nats/char "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            running, seen = 0.0, 0
    curve["seconds"] = time.perf_counter() - started   # the loop alone, evaluation included
    curve["fresh_starts"] = fresh_starts               # windows that began from a zero state
    return curve


def unigram_nats(train_ids, val_ids, vocab):
    """The baseline a language model must beat: character frequencies of the training text
    (add-one smoothed), scored on the validation text."""
    counts = torch.bincount(train_ids, minlength=vocab).double() + 1
    logp = torch.log(counts / counts.sum())
    return -logp[val_ids].mean().item()


def figure(run, curve, vocab, unigram, source):
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.plot(curve["step"], curve["train"], "o-", label="train (mean since last point)")
    ax.plot(curve["step"], curve["val"], "s-", label="validation (first windows)")
    ax.axhline(math.log(vocab), color="grey", ls=":", label=f"uniform: ln {vocab}")
    ax.axhline(unigram, color="grey", ls="--", label="unigram frequencies")
    ax.set(xlabel="optimiser step", ylabel="nats per character", title=f"char LSTM on {source}")
    right = ax.secondary_yaxis("right", functions=(to_bits, lambda b: b * math.log(2)))
    right.set_ylabel("bits per character")
    ax.legend(loc="center right")
    plot.save(fig, run, "loss-curve.png")


def show_samples(model, prompt, stoi, itos, cfg, gen, device):
    prompt_ids = torch.tensor([stoi[c] for c in prompt])
    samples = {}
    for T in TEMPERATURES:
        ids = generate(model, prompt_ids, cfg.sample_chars, T, gen, device)
        samples[T] = "".join(itos[i] for i in ids)
        print(f"--- sample at temperature {T} (prompt {prompt!r}):\n{prompt}{samples[T]}\n")
    return samples


def sample_only(run, path):
    """--sample-from: rebuild the model from a checkpoint and sample; no training."""
    saved = train.load_checkpoint(path)            # one-line error if missing or damaged
    try:
        cfg, itos, prompt = Config(**saved["config"]), saved["vocab"], saved["prompt"]
        model = CharLSTM(len(itos), cfg).to(run.device)
        train.restore_model(model, saved["model"])
    except (KeyError, TypeError) as err:
        raise CourseError(f"checkpoint '{path}' was not saved by this lesson (no {err})") from None
    print(f"loaded {path}: trained {saved['steps']} steps on {saved['source']}, validation "
          f"{saved['val_nats']:.3f} nats/char")
    gen = torch.Generator().manual_seed(run.seed)
    with torch.no_grad():
        logits, _ = model(torch.tensor([[itos.index(c) for c in prompt]], device=run.device))
    check_sampler(logits[0, -1], gen, tolerance(run.device))
    show_samples(model, prompt, {c: i for i, c in enumerate(itos)}, itos, cfg, gen, run.device)
    # Not cli.finish: a sampling run is not a training run, and recording it would replace the
    # training run's metrics in the progress record.
    print(check.summary())
    print("sampling only: not recorded in progress")
    return {"sampled_from": str(path), "steps_trained": saved["steps"]}


def main(args) -> dict:
    run = cli.start(args, __file__)
    if getattr(args, "sample_from", None):
        return sample_only(run, args.sample_from)
    cfg = QUICK if run.quick else FULL
    device, tol = run.device, tolerance(run.device)
    gen = torch.Generator().manual_seed(run.seed)

    text = load_text(run)
    source = "Tiny Shakespeare" if data.ANNOUNCED[-1]["kind"] == "downloaded" else "Python docs"
    itos = sorted(set(text))                       # the vocabulary: every character in the text
    stoi = {c: i for i, c in enumerate(itos)}
    vocab = len(itos)
    ids = torch.tensor([stoi[c] for c in text])
    n_train = int(len(ids) * (1 - VAL_FRACTION))
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    print(f"{len(text):,} characters, vocabulary {vocab}; train {len(train_ids):,}, "
          f"validation {len(val_ids):,}")
    train_streams = make_streams(train_ids, cfg.batch)          # (batch, L) on the CPU
    val_streams = make_streams(val_ids, cfg.batch)
    check_batching(train_ids, cfg)

    model = CharLSTM(vocab, cfg).to(device)
    check_state_is_cut(model, train_streams, cfg, device)
    check_loss_units(model, val_streams, vocab, cfg, device, tol)
    unigram = unigram_nats(train_ids, val_ids, vocab)
    print(f"baselines: uniform ln {vocab} = {math.log(vocab):.3f} nats/char, "
          f"unigram {unigram:.3f} nats/char ({to_bits(unigram):.3f} bits)")

    print(f"--- training: {run.steps} steps of {cfg.batch} streams x {cfg.bptt} characters")
    curve = train_lm(model, train_streams, val_streams, cfg, run.steps, device)
    train_seconds = curve["seconds"]
    n_windows = (train_streams.shape[1] - 1) // cfg.bptt
    check.equal(f"training windows started from a zero state (the stream starts, one per pass of "
                f"{n_windows} windows)", curve["fresh_starts"], math.ceil(run.steps / n_windows))
    val_nats = evaluate(model, val_streams, cfg.bptt)           # every validation window
    val_bits = to_bits(val_nats)
    print(f"validation: {val_nats:.3f} nats/char = {val_bits:.3f} bits/char "
          f"({vocab} symbols; training took {train_seconds:.0f} s)")
    check.less("validation nats/char vs the unigram baseline", val_nats, unigram)

    # the state carried window by window must give what one pass over the whole rows gives
    windows = 4
    chunked = evaluate(model, val_streams, cfg.bptt, windows)
    with torch.no_grad():
        x = val_streams[:, :windows * cfg.bptt].to(device)
        y = val_streams[:, 1:windows * cfg.bptt + 1].to(device)
        full = nats_per_char(model(x)[0], y).item()
    check.close(f"evaluate() over {windows} windows with carried state vs one full-length "
                "forward", chunked, full, atol=tol)

    path = train.save_checkpoint(run.out_dir / CHECKPOINT, {
        "model": model.state_dict(), "config": asdict(cfg), "vocab": "".join(itos),
        "prompt": text[n_train:n_train + PROMPT_CHARS], "steps": run.steps, "source": source,
        "val_nats": val_nats})
    reloaded = CharLSTM(vocab, cfg).to(device)
    train.restore_model(reloaded, train.load_checkpoint(path)["model"])
    check.close("reloaded checkpoint: validation nats/char (4 windows)",
                evaluate(reloaded, val_streams, cfg.bptt, windows), chunked, atol=tol)
    print(f"checkpoint: {path}  (sample from it: --sample-from {path})")

    prompt = text[n_train:n_train + PROMPT_CHARS]
    with torch.no_grad():
        logits, _ = model(torch.tensor([[stoi[c] for c in prompt]], device=device))
    check_sampler(logits[0, -1], gen, tol)
    samples = show_samples(model, prompt, stoi, itos, cfg, gen, device)
    figure(run, curve, vocab, unigram, source)
    print("Before the next run, predict: at temperature 0.5, more or fewer distinct words than "
          "at 1.0? Which one invents words that do not exist?")
    return cli.finish(run, {"steps": run.steps, "val_nats_per_char": val_nats,
                            "val_bits_per_char": val_bits, "unigram_nats_per_char": unigram,
                            "vocab": vocab, "train_seconds": train_seconds,
                            **{f"distinct_chars_T{T}": len(set(s)) for T, s in samples.items()}})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
