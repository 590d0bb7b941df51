"""09 - GPT-2 from scratch (phase 07, week 11)

Goal: build GPT-2 (token + learned position embeddings, pre-LN blocks of causal multi-head
      self-attention and a GELU MLP, a final LayerNorm, an LM head tied to the token
      embedding), prove it computes exactly what transformers' GPT2LMHeadModel computes once
      the weights are copied across, then train a small one on real text, character level.
Run:  python phase07-transformer/09-gpt-architecture.py            (about 2 min on a laptop CPU; not measured)
      python phase07-transformer/09-gpt-architecture.py --quick    (seconds, offline, used by the tests)
Expect: logits equal GPT2LMHeadModel's to ~1e-6 (float32) on two inputs, the full context
        included; training loss falls from ln(vocab) through the unigram baseline (the
        cross-entropy of always predicting the character frequencies): in --quick by a little,
        in the full run by well over 1 nat; gpt_training.png shows the curves.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 2000         # optimiser steps in the full run
QUICK_STEPS = 40     # --quick: enough to pass the unigram baseline, not to learn words


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

# Lesson 01's attention: softmax(q k^T / sqrt(d), masked) v and the causal mask. Lesson 02's
# MultiHeadAttention has separate q/k/v projections and re-projects its key/value inputs on
# every call; GPT-2 packs q, k, v into one matrix (c_attn), and lesson 10's KV cache needs the
# projected k, v themselves, so the GPT block is written here on top of lesson 01's functions.
attention = lessons.load("07.01")

# ---- model sizes for the comparison with transformers (chosen so no two sizes coincide) ----
CHECK_VOCAB = 101    # tokens: not a multiple of anything else here
CHECK_BATCHES = ((3, 13), (2, 64))  # (batch, length): a short input, and the full context
N_POSITIONS = 64     # context length (GPT-2 small: 1024)
N_EMBD = 64          # model width C (GPT-2 small: 768)
N_LAYER = 2          # blocks (GPT-2 small: 12)
N_HEAD = 4           # heads; head dim = 64 / 4 = 16, so head dim != heads != batch != length
WEIGHT_STD = 0.1     # std of the random weights given to the reference model: its own init
                     # zeroes biases and sets LayerNorm to identity, which would hide mistakes
LOGIT_ATOL = 1e-5    # float32 through 2 blocks: differences are ~1e-6

# ---- character-level training ----
BATCH = 32           # sequences per step
LR = 3e-3            # AdamW learning rate (small model: a large rate is fine)
WEIGHT_DECAY = 0.1   # on matrices only, as in GPT-2 / nanoGPT
EVAL_EVERY = 100     # steps between validation measurements
EVAL_BATCHES = 20    # batches per validation estimate
SPLIT = (0.9, 0.05)  # train and validation fractions of the text; the rest is test
QUICK_EVAL_EVERY = 20  # --quick
QUICK_EVAL_BATCHES = 4  # --quick


@dataclass
class GPTConfig:
    vocab_size: int = CHECK_VOCAB
    n_positions: int = N_POSITIONS
    n_embd: int = N_EMBD
    n_layer: int = N_LAYER
    n_head: int = N_HEAD
    dropout: float = 0.0          # on embeddings and residual branches (GPT-2: 0.1)
    layer_norm_eps: float = 1e-5  # GPT-2's epsilon


def gelu_tanh(x):
    """GELU, GPT-2's tanh approximation: x Phi(x) ~ 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    transformers calls it 'gelu_new'; the exact erf GELU differs by up to ~1e-3."""
    # EXERCISE gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    # END EXERCISE


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t sees positions <= t only."""

    def __init__(self, cfg):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be divisible by n_head"
        self.n_head, self.n_embd = cfg.n_head, cfg.n_embd
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)   # q, k, v packed: one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)       # mixes the heads back together
        self.resid_drop = nn.Dropout(cfg.dropout)
        self.weights = None                                   # last attention weights

    def split_heads(self, t):
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)

    def merge_heads(self, t):
        B, H, T, hd = t.shape
        return t.transpose(1, 2).reshape(B, T, H * hd)        # (B, T, C)

    def qkv(self, x):
        """x (B, T, C) -> q, k, v, each (B, H, T, hd). c_attn's output is [q | k | v]."""
        q, k, v = self.c_attn(x).split(self.n_embd, dim=-1)   # 3 x (B, T, C)
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def forward(self, x):                                     # x: (B, T, C)
        # EXERCISE causal_attention: self.qkv(x); lesson 01's attention under a (T, T) causal mask (keep its weights in self.weights); merge_heads, c_proj, resid_drop
        q, k, v = self.qkv(x)
        mask = attention.causal_mask(x.shape[1], device=x.device)         # (T, T)
        out, self.weights = attention.scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, hd)
        return self.resid_drop(self.c_proj(self.merge_heads(out)))        # (B, T, C)
        # END EXERCISE


class MLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU -> C."""

    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):                                     # (B, T, C)
        return self.drop(self.c_proj(gelu_tanh(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN residual block (GPT-2): normalise the input of each branch, never the residual
    stream itself, so the stream x carries an un-normalised identity path from the embedding
    to the final LayerNorm (the original Transformer normalised after the addition)."""

    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x):                                     # (B, T, C)
        # EXERCISE block: pre-LN: add attn of ln_1(x) to the stream x, then add mlp of ln_2(x)
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x
        # END EXERCISE


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)   # token embedding
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)  # learned position embedding
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        # Tied head: logits = h @ wte^T, the same matrix reads tokens in and writes them out
        # (one parameter, V x C fewer to learn; GPT-2 small saves 38M of its 124M this way).
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            # GPT-2: each residual branch's output projection is scaled by 1/sqrt(2 n_layer),
            # so the variance the 2 n_layer branches add to the stream stays O(1) at init
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def embed(self, idx, pos):
        """Token ids (B, T) at positions pos (T,) -> the residual stream (B, T, C)."""
        return self.drop(self.wte(idx) + self.wpe(pos))

    def forward(self, idx):                                   # idx: (B, T) token ids
        T = idx.shape[1]
        assert T <= self.cfg.n_positions, f"length {T} > context {self.cfg.n_positions}"
        x = self.embed(idx, torch.arange(T, device=idx.device))  # (B, T, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))                     # (B, T, vocab) logits


# ---- transformers' GPT-2 and the state-dict mapping ----
# HF's GPT-2 is built from `Conv1D` layers (a name kept from OpenAI's TensorFlow code): it
# computes x @ W + b with W stored (in, out), the transpose of nn.Linear's (out, in). Keys are
# otherwise the same as ours after stripping 'transformer.'. c_attn packs q, k, v along its
# output axis in that order, which is also how our c_attn splits it.
CONV1D_WEIGHTS = (
    "attn.c_attn.weight",   # (C, 3C): a forgotten transpose fails loudly (shape)
    "attn.c_proj.weight",   # (C, C): square, so a forgotten transpose fails silently
    "mlp.c_fc.weight",      # (C, 4C)
    "mlp.c_proj.weight",    # (4C, C)
)


def hf_config(cfg):
    from transformers import GPT2Config
    return GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.n_positions, n_embd=cfg.n_embd,
                      n_layer=cfg.n_layer, n_head=cfg.n_head, activation_function="gelu_new",
                      resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                      layer_norm_epsilon=cfg.layer_norm_eps, bos_token_id=None,
                      eos_token_id=None, pad_token_id=0)


def random_hf_gpt2(cfg, device, std=WEIGHT_STD):
    """A transformers GPT2LMHeadModel of config cfg with every weight random and non-trivial."""
    from transformers import GPT2LMHeadModel
    hf = GPT2LMHeadModel(hf_config(cfg)).to(device).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():   # wte and lm_head are one tensor: listed once
            base = 1.0 if ".ln_" in name and name.endswith("weight") else 0.0
            p.copy_(base + std * torch.randn_like(p))
    return hf


def load_from_hf(mine, hf_state):
    """Copy a transformers GPT-2 state dict into our GPT (in place) and return it."""
    mapped = {}
    for key, value in hf_state.items():
        name = key.removeprefix("transformer.")
        if name.endswith(".attn.bias") or name.endswith(".attn.masked_bias"):
            continue                       # older transformers store the causal mask as a buffer
        if name.endswith(CONV1D_WEIGHTS):
            value = value.t()              # Conv1D (in, out) -> nn.Linear (out, in)
        mapped[name] = value
    mine.load_state_dict(mapped, strict=True)  # strict: every key of ours is filled, no extras
    return mine


def check_against_transformers(run):
    """Our GPT vs GPT2LMHeadModel with the same (random) weights: the same logits."""
    cfg = GPTConfig()
    t0 = time.perf_counter()
    hf = random_hf_gpt2(cfg, run.device)
    mine = load_from_hf(GPT(cfg).to(run.device).eval(), hf.state_dict())
    print(f"built transformers' GPT2LMHeadModel and copied its weights in {time.perf_counter() - t0:.1f} s")
    check.equal("parameter count: ours vs GPT2LMHeadModel (head tied in both)",
                sum(p.numel() for p in mine.parameters()), sum(p.numel() for p in hf.parameters()))
    check.true("our LM head is the token embedding (tied)",
               mine.lm_head.weight.data_ptr() == mine.wte.weight.data_ptr())
    worst = 0.0
    with torch.no_grad():
        for B, T in CHECK_BATCHES:
            idx = torch.randint(0, cfg.vocab_size, (B, T), device=run.device)
            ours, ref = mine(idx), hf(idx).logits                  # (B, T, vocab)
            worst = max(worst, check.close(
                f"logits ({B}x{T}) vs GPT2LMHeadModel with copied weights", ours, ref,
                atol=LOGIT_ATOL))
        # Causality, without the reference: logits at positions <= t cannot depend on tokens > t.
        B, T = CHECK_BATCHES[0]
        idx = torch.randint(0, cfg.vocab_size, (B, T), device=run.device)
        t = T // 2
        changed = idx.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % cfg.vocab_size
        check.close(f"logits at positions <= {t} unchanged when tokens after {t} change",
                    mine(changed)[:, :t + 1], mine(idx)[:, :t + 1], atol=1e-6)
        x = torch.linspace(-6, 6, 1001, device=run.device)
        check.close("gelu_tanh vs F.gelu(approximate='tanh')", gelu_tanh(x),
                    F.gelu(x, approximate="tanh"), atol=1e-6)
    print(f"largest logit difference vs transformers: {worst:.2e}")
    return worst


def forgotten_transpose(run):
    """The square attn.c_proj weight loaded WITHOUT its Conv1D transpose (the other three
    transposed as they must be): does the load fail, and what happens to the logits?
    Returns (outcome, largest logit difference or None)."""
    cfg = GPTConfig()
    hf = random_hf_gpt2(cfg, run.device)
    # load_from_hf transposes every Conv1D weight: pre-transposing c_proj cancels it there
    state = {k: (v.t() if k.endswith("attn.c_proj.weight") else v) for k, v in hf.state_dict().items()}
    try:
        mine = load_from_hf(GPT(cfg).to(run.device).eval(), state)
    except RuntimeError:
        return "load fails", None
    with torch.no_grad():
        idx = torch.randint(0, cfg.vocab_size, CHECK_BATCHES[0], device=run.device)
        diff = (mine(idx) - hf(idx).logits).abs().max().item()
    return ("wrong logits" if diff > LOGIT_ATOL else "same logits"), diff


# ---- real text, character level ----
def load_text(run):
    """Tiny Shakespeare when cached or downloadable; offline, the Python documentation's
    prose (the 'topics' help texts that ship with CPython in pydoc_data)."""
    path = None if run.quick else data.fetch("tinyshakespeare", offline=run.offline)
    if path is not None:
        text = path.read_text(encoding="utf-8")
        data.announce("Tiny Shakespeare", "downloaded", detail=f"{len(text):,} characters")
        return text
    from pydoc_data import topics
    text = "\n\n".join(topics.topics[k] for k in sorted(topics.topics))
    data.announce("Python documentation topics (pydoc_data.topics)", "bundled",
                  stand_in_for="Tiny Shakespeare", detail=f"{len(text):,} characters of English "
                  "prose and code examples, shipped with CPython")
    return text


class CharCodec:
    """Characters <-> ids, the vocabulary being the characters of the text."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def encode(self, s):
        return torch.tensor([self.stoi[c] for c in s], dtype=torch.long)

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


def split_ids(ids):
    n_train, n_val = int(SPLIT[0] * len(ids)), int(SPLIT[1] * len(ids))
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


def get_batch(ids, block, batch, gen, device):
    """Random windows: x = ids[i:i+block], y = ids[i+1:i+block+1] (next character)."""
    starts = torch.randint(0, len(ids) - block - 1, (batch,), generator=gen)
    x = torch.stack([ids[s:s + block] for s in starts])       # (batch, block)
    y = torch.stack([ids[s + 1:s + block + 1] for s in starts])
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(model, ids, n_batches, seed, device):
    """Mean next-character cross-entropy (nats) over fixed random windows."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)                 # same windows every time
    losses = []
    for _ in range(n_batches):
        x, y = get_batch(ids, model.cfg.n_positions, BATCH, gen, device)
        logits = model(x)                                     # (B, T, V)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
    model.train()
    return sum(losses) / len(losses)


def unigram_loss(train_ids, eval_ids, vocab):
    """Cross-entropy of the best context-free model: predict the training character
    frequencies (add-one smoothed) every time."""
    counts = torch.bincount(train_ids, minlength=vocab).double() + 1
    logp = (counts / counts.sum()).log()
    return -logp[eval_ids].mean().item()


def make_optimizer(model, lr=LR):
    """AdamW with decay on matrices only (not biases, LayerNorm gains)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


def train_char_gpt(run, steps, text=None):
    """Train a small GPT on `text` (default load_text) character by character.
    Returns the model with its best-on-validation weights, the codec, the splits and history."""
    text = load_text(run) if text is None else text
    codec = CharCodec(text)
    train_ids, val_ids, test_ids = split_ids(codec.encode(text))
    cfg = GPTConfig(vocab_size=len(codec.chars))
    torch.manual_seed(run.seed)
    model = GPT(cfg).to(run.device)
    opt = make_optimizer(model)
    every, n_eval = (QUICK_EVAL_EVERY, QUICK_EVAL_BATCHES) if run.quick else (EVAL_EVERY, EVAL_BATCHES)
    gen = torch.Generator().manual_seed(run.seed)
    hist = {"step": [], "train": [], "val_step": [], "val": []}
    best = (float("inf"), None, 0)
    model.train()
    for step in range(1, steps + 1):
        x, y = get_batch(train_ids, cfg.n_positions, BATCH, gen, run.device)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())  # (B*T, V) vs (B*T,)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        hist["step"].append(step)
        hist["train"].append(loss.item())
        if step % every == 0 or step == steps:
            val = estimate_loss(model, val_ids, n_eval, run.seed + 1, run.device)
            hist["val_step"].append(step)
            hist["val"].append(val)
            print(f"step {step:5d}  train loss {loss.item():.3f}  val loss {val:.3f}", flush=True)
            if val < best[0]:
                best = (val, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    model.eval()
    return model, codec, (train_ids, val_ids, test_ids), hist, best


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)  # small matrices: threads cost more than they save, and the
                              # numbers do not depend on the core count
    max_diff = check_against_transformers(run)

    t0 = time.perf_counter()
    model, codec, (train_ids, val_ids, test_ids), hist, (best_val, _, best_step) = \
        train_char_gpt(run, run.steps)
    train_seconds = time.perf_counter() - t0
    V = len(codec.chars)
    n_eval = QUICK_EVAL_BATCHES if run.quick else EVAL_BATCHES
    unigram_val = unigram_loss(train_ids, val_ids, V)
    print(f"vocabulary {V} characters; {len(train_ids):,} training characters; "
          f"{run.steps} steps in {train_seconds:.1f} s")
    print(f"uniform guess ln V = {math.log(V):.3f}; unigram baseline on validation "
          f"{unigram_val:.3f}; best validation loss {best_val:.3f} (step {best_step})")
    check.less("validation loss of the trained GPT vs the unigram baseline (nats)",
               best_val, unigram_val)
    test_loss = estimate_loss(model, test_ids, n_eval, run.seed + 2, run.device)
    print(f"test loss of the model chosen on validation (measured once): {test_loss:.3f} "
          f"(unigram on test {unigram_loss(train_ids, test_ids, V):.3f})")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(hist["step"], hist["train"], color="tab:blue", alpha=0.5, label="train (batch)")
    ax.plot(hist["val_step"], hist["val"], "o-", color="tab:orange", label="validation")
    ax.axhline(unigram_val, color="k", ls="--", label="unigram baseline (validation)")
    ax.axhline(math.log(V), color="grey", ls=":", label="uniform: ln V")
    ax.set(xlabel="step", ylabel="cross-entropy (nats / character)",
           title="a small GPT learns more than character frequencies")
    ax.legend()
    plot.save(fig, run, "gpt_training.png")
    outcome, diff = forgotten_transpose(run)      # after training: changes none of its numbers
    answers = {
        "beats_unigram": ("yes" if best_val < unigram_val else "no",
                          f"best validation loss {best_val:.3f} after {run.steps} steps vs the unigram "
                          f"baseline {unigram_val:.3f} nats (gpt_training.png)"),
        "forgotten_transpose": (outcome, "load_state_dict raised" if diff is None else
                                f"load_state_dict accepted it; logits differ from GPT2LMHeadModel's by "
                                f"up to {diff:.3g} (vs {max_diff:.2g} with the transpose)"),
    }
    return cli.finish(run, {"steps": run.steps, "max_logit_diff_vs_transformers": max_diff,
                            "vocab": V, "unigram_val_loss": unigram_val,
                            "best_val_loss": best_val, "test_loss": test_loss}, answers=answers)


# Question to think about: GPT-2 ties lm_head to wte. Which weight in the HF state dict do you
# not need to copy?
# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.09`) before running it;
# `python -m dlcourse check 07.09` compares your answers with what the run measures.
# PREDICT forgotten_transpose (load fails / wrong logits / same logits): attn.c_proj.weight is square (C x C); if you forget its Conv1D -> nn.Linear transpose, what happens?
# ANSWER forgotten_transpose:
# PREDICT beats_unigram (yes / no): after only 40 steps (--quick; 2000 in the full run), does the GPT's validation loss beat the unigram baseline, a model that knows the exact character frequencies?
# ANSWER beats_unigram:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
