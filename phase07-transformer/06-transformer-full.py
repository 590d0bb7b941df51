"""06 - The full encoder-decoder Transformer, trained on a toy task (phase 07, week 11)

Goal: assemble the model of "Attention Is All You Need" from the earlier lessons (token
      embeddings scaled by sqrt(d_model) + lesson 03's sinusoidal encoding, lesson 04's
      Encoder, lesson 05's Decoder, a generator tied to the target embedding), prove it
      computes what nn.Transformer computes with the same weights, then train it the paper's
      way (label smoothing, the warm-up "Noam" learning-rate schedule, teacher forcing) to
      reverse strings of digits, and decode greedily, incrementally (one new position per step).
Run:  python phase07-transformer/06-transformer-full.py            (21 min on a busy shared 2-core CPU; 3.1 min of CPU time)
      python phase07-transformer/06-transformer-full.py --quick    (seconds, offline, used by the tests)
Expect: logits equal nn.Transformer's (+ the same embeddings and generator) to ~1e-6, post-LN
        and pre-LN, with source and target padding and a causal mask; changing later target
        tokens changes no earlier logit (max |diff| 0); extra source padding changes nothing;
        decoding one position at a time (decode_step) gives the full decoder's logits; the
        smoothed loss equals F.cross_entropy(label_smoothing=eps, ignore_index=pad) to ~1e-6
        and ignores pads; LambdaLR(noam) equals the formula and peaks at the warm-up step.
        Reversal of held-out digit strings: --quick (length 1-6, 100 steps, 1 layer) reaches
        token accuracy ~0.8 against ~0.3 for copying the input (checked: > best baseline + 0.2);
        full run (length 1-12, 2000 steps, 2+2 layers, d_model 64), measured with seed 0: test
        exact match 0.997 and token accuracy 0.999 on 1000 held-out strings (copy baseline 0.25);
        validation token accuracy 0.96 at step 750, 1.000 at step 1250.
        reversal_training.png shows the loss curve and the cross-attention anti-diagonal.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 2000         # optimiser steps in the full run
QUICK_STEPS = 100    # --quick: short strings, a small model: most digits, not every string


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
import time
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

attn = lessons.load("07.01")   # causal_mask
pos = lessons.load("07.03")    # sinusoidal_encoding
enc = lessons.load("07.04")    # Encoder, from_key_padding_mask, load_stack_from_torch, randomize_
dec = lessons.load("07.05")    # Decoder, target_mask, load_stack_from_torch

# ---- the comparison with nn.Transformer (all sizes different, so a swapped axis shows) ----
CHECK_B = 3                  # batch
CHECK_SRC_LENGTHS = [7, 4, 6]  # real source tokens per row: padding removes real positions
CHECK_TGT_LENGTHS = [5, 3, 4]  # real target tokens per row (Tt 5 != Ts 7)
CHECK_VOCABS = (11, 13)      # source and target vocabulary sizes
CHECK_D_MODEL = 12           # width; 2 heads of 6 (even: nn.Transformer's fast path wants it)
CHECK_HEADS = 2              # heads
CHECK_LAYERS = 2             # encoder and decoder layers
CHECK_D_FF = 20              # feed-forward width
EXTRA_PAD = 3                # pad tokens appended to the source in the padding-invariance check
TOL = 1e-5                   # float32: the same sums in a different order
LOSS_TOL = 1e-5              # losses of size ~5 in float32 (relative rounding ~1e-7), summed differently
DECODE_TOL = 1e-4            # the trained model's logits (size ~10) computed two ways, float32

# ---- the toy task: reverse a string of digits ----
PAD, BOS, EOS = 0, 1, 2      # special token ids; digit d is token d + 3
VOCAB = 13                   # 3 specials + 10 digits (source and target share the ids)
MIN_LEN, MAX_LEN = 1, 12     # digits per string, uniform
TRAIN_POOL = 20_000          # distinct training strings; held-out strings are never among them
N_VAL, N_TEST = 500, 1000    # held-out strings for model selection and for the one test
D_MODEL = 64                 # model width (the paper: 512)
N_HEADS = 4                  # heads (head dim 16)
N_LAYERS = 2                 # encoder layers, and as many decoder layers (the paper: 6)
D_FF = 128                   # feed-forward width (the paper: 4 d_model)
DROPOUT = 0.1                # the paper's rate
BATCH = 64                   # strings per step
LR_FACTOR = 0.5              # lr = factor * noam(step); peak factor * d^-0.5 * warmup^-0.5 = 4.4e-3
WARMUP = 200                 # steps of linear warm-up before the 1/sqrt(step) decay
SMOOTHING = 0.1              # label smoothing epsilon (the paper's)
CLIP = 1.0                   # gradient-norm clip
EVAL_EVERY = 250             # steps between validation measurements
MARGIN = 0.2                 # token accuracy must beat the best baseline's by this much (any run)
# --quick: shorter strings and a 1-layer model without dropout learn the reversal of the first
# digits within 100 steps (dropout slows the start; the full run keeps the paper's 0.1)
QUICK_MAX_LEN = 6                                            # digits per string at most
QUICK_MODEL = dict(d_model=32, n_layers=1, d_ff=64, dropout=0.0)  # Seq2SeqConfig overrides
QUICK_WARMUP = 30            # warm-up steps: peak 0.5 * 32^-0.5 * 30^-0.5 = 1.6e-2, reached sooner
QUICK_EVAL_EVERY = 50        # steps between validation measurements
QUICK_N_VAL, QUICK_N_TEST = 200, 300  # held-out strings
QUICK_TRAIN_POOL = 4000      # distinct training strings (100 steps x 64 draw 6400; the majority
                             # baseline encodes the whole pool, which at 20,000 cost ~1 s)


# ---------------------------------------------------------------- the model (the capstone loads it)
@dataclass
class Seq2SeqConfig:
    src_vocab: int
    tgt_vocab: int
    d_model: int = D_MODEL
    n_heads: int = N_HEADS
    n_layers: int = N_LAYERS      # encoder layers, and as many decoder layers
    d_ff: int = D_FF
    dropout: float = DROPOUT      # embeddings, every sub-layer's output, attention weights, FFN
    max_len: int = 64             # longest source or target the positional table covers
    norm_first: bool = False      # False: post-LN as in the paper; True: pre-LN
    pad_id: int = PAD
    tie_embeddings: bool = True   # generator weight = target embedding (the paper, section 3.4)


class Seq2SeqTransformer(nn.Module):
    """src (B, Ts) ids, tgt_in (B, Tt) ids -> logits (B, Tt, tgt_vocab).
    Both stacks end with a LayerNorm, as nn.Transformer's do (post-LN does not need them; a
    pre-LN stack does, its residual stream is never normalised otherwise)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.src_embed = nn.Embedding(cfg.src_vocab, d)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, d)
        self.register_buffer("pe", pos.sinusoidal_encoding(cfg.max_len, d), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        layer_kw = dict(dropout=cfg.dropout, norm_first=cfg.norm_first)
        self.encoder = enc.Encoder(cfg.n_layers, d, cfg.n_heads, cfg.d_ff, final_norm=True, **layer_kw)
        self.decoder = dec.Decoder(cfg.n_layers, d, cfg.n_heads, cfg.d_ff, final_norm=True, **layer_kw)
        self.generator = nn.Linear(d, cfg.tgt_vocab, bias=False)
        for p in self.parameters():          # nn.Transformer's init: Xavier on every matrix
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        # Embeddings N(0, 1/d): times sqrt(d) they enter the model with unit variance, the size
        # of the sinusoids they are added to; the same matrix then serves as the generator.
        nn.init.normal_(self.src_embed.weight, 0.0, d ** -0.5)
        nn.init.normal_(self.tgt_embed.weight, 0.0, d ** -0.5)
        if cfg.tie_embeddings:
            self.generator.weight = self.tgt_embed.weight   # one (tgt_vocab, d) parameter

    def _embed(self, table, ids, start=0):
        """ids (B, T) -> (B, T, d): token vectors scaled by sqrt(d_model) (section 3.4) plus the
        sinusoidal encoding of positions start..start+T-1."""
        T = ids.shape[1]
        assert start + T <= self.cfg.max_len, f"length {start + T} > max_len {self.cfg.max_len}"
        return self.drop(table(ids) * math.sqrt(self.cfg.d_model) + self.pe[start:start + T])

    def encode(self, src, src_kpm):
        """src (B, Ts), src_kpm (B, Ts) True = pad -> memory (B, Ts, d)."""
        return self.encoder(self._embed(self.src_embed, src), enc.from_key_padding_mask(src_kpm))

    def decode(self, tgt_in, memory, src_kpm, tgt_kpm):
        """tgt_in (B, Tt), memory (B, Ts, d) -> logits (B, Tt, tgt_vocab). Position t sees
        target tokens <= t (causal and real) and every real source position."""
        h = self.decoder(self._embed(self.tgt_embed, tgt_in), memory,
                         dec.target_mask(tgt_kpm),                    # (B, 1, Tt, Tt)
                         enc.from_key_padding_mask(src_kpm))          # (B, 1, 1, Ts)
        return self.generator(h)

    def forward(self, src, tgt_in):
        src_kpm, tgt_kpm = src == self.cfg.pad_id, tgt_in == self.cfg.pad_id
        return self.decode(tgt_in, self.encode(src, src_kpm), src_kpm, tgt_kpm)

    @property
    def cross_attention(self):
        """Each decoder layer's cross-attention weights of the last forward, (B, h, Tt, Ts)."""
        return [layer.multihead_attn.weights for layer in self.decoder.layers]

    def decode_step(self, token, t, memory, src_kpm, cache):
        """One new target position t: token (B, 1) -> logits (B, tgt_vocab). cache[l] holds
        decoder layer l's INPUTS at positions 0..t-1 (B, t, d); it is extended in place.
        Causality is what makes this exact: no earlier position ever looks at position t, so
        their hidden states never change and only the new row has to be computed."""
        # EXERCISE decode_step: embed the token at position t; per layer append x to cache[i], self-attend x over it (pre-LN normalises the keys too), then cross-attention and FFN via enc.sublayer; final norm, generator
        x = self._embed(self.tgt_embed, token, start=t)                  # (B, 1, d)
        mem_mask = enc.from_key_padding_mask(src_kpm)                    # (B, 1, 1, Ts)
        for i, layer in enumerate(self.decoder.layers):
            seq = torch.cat([cache[i], x], dim=1)                        # (B, t+1, d)
            cache[i] = seq
            if layer.norm_first:   # x + SelfAttn(norm(x)): keys and values are normalised too
                kv = layer.norm1(seq)
                x = x + layer.dropout(layer.self_attn(kv[:, -1:], kv, kv))
            else:                  # norm(x + SelfAttn(x)); no mask: every key is in the past
                x = layer.norm1(x + layer.dropout(layer.self_attn(x, seq, seq)))
            x = enc.sublayer(x, lambda h: layer._cross_attention(h, memory, mem_mask),
                             layer.norm2, layer.norm_first)
            x = enc.sublayer(x, layer._feed_forward, layer.norm3, layer.norm_first)
        return self.generator(self.decoder.norm(x))[:, 0]                # (B, tgt_vocab)
        # END EXERCISE


@torch.no_grad()
def greedy_decode(model, src, bos, eos, max_len, incremental=True):
    """src (B, Ts) -> tokens (B, <= max_len), without BOS: at each step the most probable next
    token; a row that has produced EOS gets PAD afterwards; stops when every row has.
    incremental=False re-runs the whole decoder on the prefix at every step (the reference)."""
    was_training = model.training
    model.eval()
    pad = model.cfg.pad_id
    src_kpm = src == pad
    memory = model.encode(src, src_kpm)                                  # (B, Ts, d): once
    B = src.shape[0]
    ys = torch.full((B, 1), bos, dtype=torch.long, device=src.device)   # (B, 1): BOS
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    cache = [memory.new_zeros(B, 0, model.cfg.d_model) for _ in model.decoder.layers]
    for t in range(max_len):
        if incremental:
            logits = model.decode_step(ys[:, -1:], t, memory, src_kpm, cache)       # (B, V)
        else:
            logits = model.decode(ys, memory, src_kpm, ys == pad)[:, -1]            # (B, V)
        nxt = torch.where(done, pad, logits.argmax(-1))                  # (B,)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt == eos
        if done.all():
            break
    model.train(was_training)
    return ys[:, 1:]


# ---------------------------------------------------------------- training (the capstone loads it)
def noam(step, d_model, warmup):
    """The paper's schedule (section 5.3): d^-0.5 * min(step^-0.5, step * warmup^-1.5), step >= 1.
    Linear warm-up to its peak d^-0.5 warmup^-0.5 at step = warmup, then 1/sqrt(step) decay.
    Adam's early steps are large relative to its still-poor second-moment estimates; the
    warm-up keeps post-LN Transformers from diverging there."""
    # EXERCISE noam: d_model^-0.5 * min(step^-0.5, step * warmup^-1.5): the two pieces meet at step = warmup
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
    # END EXERCISE


def make_optimizer(model, lr_factor, warmup):
    """Adam with the paper's betas and eps; lr = lr_factor * noam(step). LambdaLR calls its
    function with the number of scheduler.step() calls so far (0 first): step = that + 1."""
    opt = torch.optim.Adam(model.parameters(), lr=lr_factor, betas=(0.9, 0.98), eps=1e-9)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda n: noam(n + 1, model.cfg.d_model, warmup))
    return opt, sched


def smoothed_loss(logits, target, smoothing, pad):
    """Label-smoothed cross-entropy, mean over non-pad target positions.
    The target distribution puts 1 - eps on the right token and spreads eps uniformly over all
    V tokens (PyTorch's convention): q = (1 - eps) onehot + eps / V. Then
    -sum q log p = (1 - eps) NLL + eps * mean_v(-log p_v). logits (N, V), target (N,)."""
    # EXERCISE smoothed_loss: log_softmax; per row (1 - eps) * NLL of the target + eps * mean over all V of -log p; average over rows whose target is not pad
    logp = F.log_softmax(logits.float(), dim=-1)                         # (N, V)
    nll = -logp.gather(-1, target[:, None])[:, 0]                        # (N,)
    uniform = -logp.mean(dim=-1)                                         # (N,)
    loss = (1 - smoothing) * nll + smoothing * uniform
    real = target != pad                                                 # pads carry no loss
    return loss[real].sum() / real.sum()
    # END EXERCISE


def fit(model, next_batch, steps, *, lr_factor, warmup, smoothing, clip=CLIP, evaluate=None,
        eval_every=EVAL_EVERY, log=print):
    """Teacher forcing: next_batch() -> (src (B, Ts), tgt (B, Tt)) on the model's device, tgt =
    BOS y_1 .. y_n EOS PAD..; the decoder reads tgt[:, :-1] and is scored on tgt[:, 1:] (each
    position predicts the next token, given the true previous ones). evaluate(model) -> a
    validation score, higher is better, measured every eval_every steps and at the end; the
    best-scoring weights are restored. Returns (history, best_score, best_step)."""
    opt, sched = make_optimizer(model, lr_factor, warmup)
    pad = model.cfg.pad_id
    hist = {"step": [], "loss": [], "lr": [], "eval_step": [], "eval": []}
    best = (-float("inf"), None, 0)
    model.train()
    for step in range(1, steps + 1):
        src, tgt = next_batch()
        tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]                        # shifted by one
        logits = model(src, tgt_in)                                      # (B, Tt-1, V)
        loss = smoothed_loss(logits.flatten(0, 1), tgt_out.flatten(), smoothing, pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        hist["lr"].append(opt.param_groups[0]["lr"])                     # the rate this step used
        opt.step()
        sched.step()
        hist["step"].append(step)
        hist["loss"].append(loss.item())
        if evaluate is not None and (step % eval_every == 0 or step == steps):
            score = evaluate(model)
            model.train()
            hist["eval_step"].append(step)
            hist["eval"].append(score)
            log(f"step {step:5d}  loss {loss.item():.3f}  lr {hist['lr'][-1]:.2e}  validation {score:.3f}")
            if score > best[0]:
                best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return hist, best[0], best[2]


def pad_batch(rows, pad=PAD):
    """List of 1-D LongTensors -> (B, max length) padded on the right."""
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad)


# ---------------------------------------------------------------- checks of the model
def random_ids(gen, lengths, vocab, T):
    """(B, T) ids in 1..vocab-1 (never PAD) for the first lengths[b] positions, PAD after."""
    ids = torch.randint(1, vocab, (len(lengths), T), generator=gen)
    ids[torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]] = PAD
    return ids


def check_against_nn_transformer(gen, dev):
    """Our model vs nn.Transformer sandwiched between the same embeddings, positional table
    and generator: one logit tensor each, compared everywhere (padded positions included)."""
    src_v, tgt_v = CHECK_VOCABS
    Ts, Tt = max(CHECK_SRC_LENGTHS), max(CHECK_TGT_LENGTHS)
    src = random_ids(gen, CHECK_SRC_LENGTHS, src_v, Ts).to(dev)
    tgt = random_ids(gen, CHECK_TGT_LENGTHS, tgt_v, Tt).to(dev)
    errs = {}
    for norm_first in (False, True):
        cfg = Seq2SeqConfig(src_v, tgt_v, CHECK_D_MODEL, CHECK_HEADS, CHECK_LAYERS, CHECK_D_FF,
                            dropout=0.0, max_len=16, norm_first=norm_first)
        with warnings.catch_warnings():   # its notes on the nested-tensor fast path: not ours
            warnings.simplefilter("ignore", UserWarning)
            ref = nn.Transformer(CHECK_D_MODEL, CHECK_HEADS, CHECK_LAYERS, CHECK_LAYERS, CHECK_D_FF,
                                 dropout=0.0, batch_first=True, norm_first=norm_first)
        ref = enc.randomize_(ref, gen).to(dev).eval()   # non-trivial norms and biases
        mine = Seq2SeqTransformer(cfg)
        enc.randomize_(mine, gen)                        # embeddings (and the tied generator)
        enc.load_stack_from_torch(mine.encoder, ref.encoder)
        dec.load_stack_from_torch(mine.decoder, ref.decoder)
        mine = mine.to(dev).eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the reference side, written out: its own sqrt(d), its own masks in PyTorch's
            # conventions (True = IGNORE / NOT allowed), the generator as a plain matmul
            scale = CHECK_D_MODEL ** 0.5
            table = pos.sinusoidal_encoding(16, CHECK_D_MODEL, device=dev)
            x_src = mine.src_embed.weight[src] * scale + table[:Ts]
            x_tgt = mine.tgt_embed.weight[tgt] * scale + table[:Tt]
            h = ref(x_src, x_tgt, tgt_mask=~attn.causal_mask(Tt, device=dev),
                    src_key_padding_mask=src == PAD, tgt_key_padding_mask=tgt == PAD,
                    memory_key_padding_mask=src == PAD)
            ref_logits = h @ mine.tgt_embed.weight.T                     # (B, Tt, tgt_vocab)
            errs[norm_first] = check.close(
                f"{'pre' if norm_first else 'post'}-LN, {CHECK_LAYERS}+{CHECK_LAYERS} layers, source and "
                f"target padding, causal: our logits vs nn.Transformer's with copied weights",
                mine(src, tgt), ref_logits, atol=TOL)
            # decode_step has a branch per norm placement: each against the full decoder
            full = torch.randint(1, tgt_v, tgt.shape, generator=gen).to(dev)     # no target pads
            memory = mine.encode(src, src == PAD)
            cache = [memory.new_zeros(len(src), 0, CHECK_D_MODEL) for _ in mine.decoder.layers]
            steps = torch.stack([mine.decode_step(full[:, t:t + 1], t, memory, src == PAD, cache)
                                 for t in range(Tt)], 1)                       # (B, Tt, V)
            check.close(f"{'pre' if norm_first else 'post'}-LN: logits one position at a time "
                        "(decode_step, cached layer inputs) vs the whole target at once",
                        steps, mine(src, full), atol=TOL)
    check.true("generator weight is the target embedding (tied)",
               mine.generator.weight.data_ptr() == mine.tgt_embed.weight.data_ptr())
    return mine, src, tgt, max(errs.values())


def check_causality_and_padding(model, src, tgt, gen):
    """Later target tokens cannot move earlier logits; extra source padding moves nothing."""
    _, tgt_v = CHECK_VOCABS
    full = torch.randint(1, tgt_v, tgt.shape, generator=gen).to(tgt.device)  # no target pads
    with torch.no_grad():
        base = model(src, full)
        worst_past, least_next = 0.0, float("inf")
        for t in range(full.shape[1] - 1):
            changed = full.clone()
            changed[:, t + 1:] = (changed[:, t + 1:] % (tgt_v - 1)) + 1    # other non-pad ids
            out = model(src, changed)
            worst_past = max(worst_past, (out[:, :t + 1] - base[:, :t + 1]).abs().max().item())
            least_next = min(least_next, (out[:, t + 1] - base[:, t + 1]).abs().max().item())
        check.close("logits at positions <= t after changing target tokens after t (all t)",
                    worst_past, 0.0, atol=TOL)
        check.greater("...while position t+1 does change (smallest max |diff| over t)",
                      least_next, 100 * TOL)
        padded = torch.cat([src, torch.full((src.shape[0], EXTRA_PAD), PAD, device=src.device)], 1)
        check.close(f"logits with {EXTRA_PAD} extra source pad tokens vs without",
                    model(padded, tgt), model(src, tgt), atol=TOL)
    return worst_past


def check_loss(gen, dev):
    """Our smoothed loss vs PyTorch's, on logits whose targets include pads."""
    N, V = 40, 9
    logits = (3 * torch.randn(N, V, generator=gen)).to(dev)
    target = torch.randint(1, V, (N,), generator=gen)
    target[torch.randperm(N, generator=gen)[:N // 4]] = PAD             # a quarter are pads
    target = target.to(dev)
    err = 0.0
    for eps in (0.0, SMOOTHING, 0.3):
        err = max(err, check.close(
            f"smoothed loss (eps {eps}) vs F.cross_entropy(label_smoothing={eps}, ignore_index=pad)",
            smoothed_loss(logits, target, eps, PAD),
            F.cross_entropy(logits, target, label_smoothing=eps, ignore_index=PAD), atol=LOSS_TOL))
    moved = logits.clone()
    moved[target == PAD] = 100 * torch.randn_like(moved[target == PAD])
    check.equal("loss unchanged when the logits at pad targets change",
                smoothed_loss(moved, target, SMOOTHING, PAD).item(),
                smoothed_loss(logits, target, SMOOTHING, PAD).item())
    return err


def check_schedule():
    """LambdaLR(noam) vs the piecewise form of the formula, at chosen steps; the peak."""
    d, warm = D_MODEL, WARMUP
    model = nn.Linear(2, 2)
    model.cfg = Seq2SeqConfig(VOCAB, VOCAB)   # make_optimizer reads d_model from the config
    opt, sched = make_optimizer(model, 1.0, warm)
    lrs = []
    for _ in range(4 * warm):
        lrs.append(opt.param_groups[0]["lr"])  # the rate used by steps 1, 2, ...
        opt.step()
        sched.step()
    steps = [1, 2, warm // 2, warm - 1, warm, warm + 1, 3 * warm]
    # piecewise, not min(): the warm-up line below warmup, the decay above it
    expected = [d ** -0.5 * (s / warm ** 1.5 if s < warm else s ** -0.5) for s in steps]
    check.close(f"LambdaLR(noam) learning rate at steps {steps} vs the formula",
                [lrs[s - 1] for s in steps], expected, rtol=1e-9, atol=0.0)
    check.equal("the schedule peaks at step = warmup", max(range(len(lrs)), key=lrs.__getitem__) + 1, warm)


# ---------------------------------------------------------------- the toy task
def encode_digits(s, reverse=False):
    digits = [int(c) + 3 for c in s]
    return torch.tensor([BOS] * reverse + (digits[::-1] if reverse else digits) + [EOS])


def make_strings(gen, n, max_len, exclude=frozenset()):
    """n distinct digit strings of uniform random length MIN_LEN..max_len, none in exclude.
    Drawn in blocks of tensors (a Python loop of single draws is slow), duplicates dropped."""
    out, seen = [], set(exclude)
    while len(out) < n:
        lengths = torch.randint(MIN_LEN, max_len + 1, (n,), generator=gen).tolist()
        digits = torch.randint(0, 10, (n, max_len), generator=gen).tolist()
        for L, row in zip(lengths, digits):
            s = "".join(map(str, row[:L]))
            if s not in seen and len(out) < n:
                seen.add(s)
                out.append(s)
    return out


def batch_of(strings, dev):
    """Sources 'd1 .. dn EOS' and targets 'BOS dn .. d1 EOS', padded: (B, Ts), (B, Tt)."""
    src = pad_batch([encode_digits(s) for s in strings])
    tgt = pad_batch([encode_digits(s, reverse=True) for s in strings])
    return src.to(dev), tgt.to(dev)


def token_scores(pred, tgt_out):
    """pred (B, <=T) decoded tokens, tgt_out (B, T) the right ones (EOS included, PAD after).
    Token accuracy over the real target positions, and exact match of the whole string."""
    T = tgt_out.shape[1]
    pred = F.pad(pred, (0, max(0, T - pred.shape[1])), value=PAD)[:, :T]   # (B, T)
    real = tgt_out != PAD
    right = (pred == tgt_out) & real
    return (right.sum() / real.sum()).item(), (right.sum(1) == real.sum(1)).float().mean().item()


def baselines(src, tgt_out, train_strings):
    """Two answers that need no attention: copy the input, or at every position the digit most
    common there in training (EOS where most training strings have ended)."""
    copy = token_scores(src, tgt_out)[0]                                 # src is 'digits EOS'
    _, train_tgt = batch_of(train_strings, "cpu")
    train_out = train_tgt[:, 1:]
    T = tgt_out.shape[1]
    common = torch.stack([torch.bincount(train_out[:, t][train_out[:, t] != PAD], minlength=VOCAB).argmax()
                          for t in range(min(T, train_out.shape[1]))])   # (T,)
    majority = token_scores(common.expand(len(src), -1).to(src.device), tgt_out)[0]
    return copy, majority


def main(args) -> dict:
    run = cli.start(args, __file__)
    dev = run.device
    torch.set_num_threads(1)   # small matrices: threads cost more than they save
    gen = torch.Generator().manual_seed(run.seed)

    print("--- the whole model vs nn.Transformer with copied weights")
    data.announce("random token ids for the model checks", kind="generated")
    model_chk, src_chk, tgt_chk, max_diff = check_against_nn_transformer(gen, dev)
    print("--- causality and padding")
    causal_leak = check_causality_and_padding(model_chk, src_chk, tgt_chk, gen)
    print("--- label-smoothed loss and the warm-up schedule")
    loss_diff = check_loss(gen, dev)
    check_schedule()

    print("--- training: reverse a string of digits")
    max_len, model_kw, warmup, every, n_val, n_test, pool = (
        (QUICK_MAX_LEN, QUICK_MODEL, QUICK_WARMUP, QUICK_EVAL_EVERY, QUICK_N_VAL, QUICK_N_TEST,
         QUICK_TRAIN_POOL) if run.quick
        else (MAX_LEN, {}, WARMUP, EVAL_EVERY, N_VAL, N_TEST, TRAIN_POOL))
    train_strings = make_strings(gen, pool, max_len)
    held_out = make_strings(gen, n_val + n_test, max_len, exclude=set(train_strings))
    val_strings, test_strings = held_out[:n_val], held_out[n_val:]
    data.announce(f"digit strings of length {MIN_LEN}-{max_len} and their reversals", kind="generated",
                  detail=f"{len(train_strings)} training strings, {n_val} validation and {n_test} test "
                         "strings never seen in training")
    val_src, val_tgt = batch_of(val_strings, dev)

    def next_batch():
        idx = torch.randint(0, len(train_strings), (BATCH,), generator=gen)
        return batch_of([train_strings[i] for i in idx], dev)

    def evaluate(model):
        return token_scores(greedy_decode(model, val_src, BOS, EOS, max_len + 1), val_tgt[:, 1:])[0]

    torch.manual_seed(run.seed)
    cfg = Seq2SeqConfig(VOCAB, VOCAB, max_len=max_len + 2, **model_kw)
    model = Seq2SeqTransformer(cfg).to(dev)
    print(f"model: d_model {cfg.d_model}, {cfg.n_layers}+{cfg.n_layers} layers, {cfg.n_heads} heads, "
          f"d_ff {cfg.d_ff}, dropout {cfg.dropout}; {sum(p.numel() for p in model.parameters()):,} parameters")
    t0 = time.perf_counter()
    hist, best_val, best_step = fit(model, next_batch, run.steps, lr_factor=LR_FACTOR, warmup=warmup,
                                    smoothing=SMOOTHING, evaluate=evaluate, eval_every=every)
    train_seconds = time.perf_counter() - t0
    first, last = sum(hist["loss"][:10]) / 10, sum(hist["loss"][-10:]) / 10
    print(f"{run.steps} steps in {train_seconds:.1f} s; loss {first:.3f} (first 10) -> {last:.3f} (last 10); "
          f"best validation token accuracy {best_val:.3f} at step {best_step}")
    check.less("training loss, mean of the last 10 steps vs the first 10", last, first)

    print("--- greedy decoding of the held-out test strings (measured once)")
    test_src, test_tgt = batch_of(test_strings, dev)
    pred = greedy_decode(model, test_src, BOS, EOS, max_len + 1)
    with torch.no_grad():
        # incremental decoding (one new position per step) vs re-running the whole decoder
        pred_full = greedy_decode(model, test_src, BOS, EOS, max_len + 1, incremental=False)
        check.equal("incremental greedy tokens vs re-running the full decoder at every step", pred, pred_full)
        src_kpm = test_src == PAD
        memory = model.encode(test_src, src_kpm)
        cache = [memory.new_zeros(len(test_src), 0, model.cfg.d_model) for _ in model.decoder.layers]
        tf_in = torch.cat([torch.full_like(pred[:, :1], BOS), pred[:, :-1]], 1)      # (B, T)
        step_logits = torch.stack([model.decode_step(tf_in[:, t:t + 1], t, memory, src_kpm, cache)
                                   for t in range(tf_in.shape[1])], 1)               # (B, T, V)
        full_logits = model(test_src, tf_in)                                          # (B, T, V)
        real = pred != PAD         # positions up to and including each row's EOS
        check.close("logits, step by step (cached layer inputs) vs the full decoder, real positions",
                    step_logits[real], full_logits[real], atol=DECODE_TOL)
        # greedy is consistent with teacher forcing on its own output: the argmax at every
        # position of BOS y1 .. y(n-1) is y(t) (a decoder that peeked ahead would differ)
        check.equal("argmax of teacher-forced logits on the greedy output = the greedy output",
                    full_logits.argmax(-1)[real], pred[real])
    token_acc, exact = token_scores(pred, test_tgt[:, 1:])
    copy_acc, majority_acc = baselines(test_src, test_tgt[:, 1:], train_strings)
    print(f"test: token accuracy {token_acc:.3f}, exact match {exact:.3f} on {n_test} strings; "
          f"baselines: copy the input {copy_acc:.3f}, most common digit per position {majority_acc:.3f}")
    check.greater(f"test token accuracy vs the best baseline + {MARGIN}", token_acc,
                  max(copy_acc, majority_acc) + MARGIN)

    # ---- the answers to the questions at the end, measured on this run
    # the smoothed loss's floor: its value at the smoothed target itself, vs a confident prediction
    right = torch.tensor([3])                                            # any token id
    q = torch.full((1, VOCAB), SMOOTHING / VOCAB)
    q[0, right] += 1 - SMOOTHING
    floor = smoothed_loss(q.log(), right, SMOOTHING, PAD).item()
    confident = smoothed_loss(20 * F.one_hot(right, VOCAB).float(), right, SMOOTHING, PAD).item()
    floor_answer = min(("0", "0.5", "1"), key=lambda o: abs(float(o) - floor))
    # where the last layer's cross-attention looks, teacher-forced on the validation strings:
    # decoder input t (BOS, y1, ..) predicts y(t+1) = source digit n-1-t (anti-diagonal)
    with torch.no_grad():
        model(val_src, val_tgt[:, :-1])
    w_val = model.cross_attention[-1].mean(1).cpu()                      # (B, Tt, Ts) head average
    anti, diag, unif = [], [], []
    for b, s in enumerate(val_strings):
        n = len(s)
        anti += [w_val[b, t, n - 1 - t].item() for t in range(n)]
        diag += [w_val[b, t, t].item() for t in range(n)]
        unif += [1 / (n + 1)] * n                                        # n digits + EOS as keys
    anti, diag, unif = (sum(v) / len(v) for v in (anti, diag, unif))
    pattern = ("uniform" if max(anti, diag) < 2 * unif else
               "anti-diagonal" if anti > diag else "diagonal")

    # ---- figure: loss curve and one cross-attention map
    longest = max(range(n_test), key=lambda i: len(test_strings[i]))
    s = test_strings[longest]
    with torch.no_grad():
        model(test_src[longest:longest + 1], test_tgt[longest:longest + 1, :len(s) + 1])  # teacher-forced
    w = model.cross_attention[-1][0].mean(0).cpu()                       # (Tt, Ts), head average
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.3), gridspec_kw={"wspace": 0.45})
    ax1.plot(hist["step"], hist["loss"], color="tab:blue", alpha=0.6, label="training loss (smoothed CE)")
    ax1.set(xlabel="step", ylabel="loss (nats / token)", yscale="log")
    ax1b = ax1.twinx()
    ax1b.plot(hist["eval_step"], hist["eval"], "o-", color="tab:orange", label="validation token accuracy")
    ax1b.set(ylabel="validation token accuracy", ylim=(0, 1.02))
    ax1.legend(loc="upper center", fontsize=8)
    ax1b.legend(loc="center right", fontsize=8)
    ax1.set_title("reversal: loss and held-out accuracy")
    ax2.imshow(w[:, :len(s) + 1], cmap="viridis", vmin=0)
    ax2.set_xticks(range(len(s) + 1), list(s) + ["EOS"])
    ax2.set_yticks(range(len(s) + 1), ["BOS"] + list(s[::-1]))
    ax2.set(xlabel="source token (key)", ylabel="decoder input (query)",
            title=f"last layer cross-attention, test string {s}")
    plot.save(fig, run, "reversal_training.png")
    return cli.finish(run, {"steps": run.steps, "max_logit_diff_vs_nn_transformer": max_diff,
                            "causal_leak": causal_leak, "max_loss_diff_vs_torch": loss_diff,
                            "train_seconds": train_seconds, "best_val_token_acc": best_val,
                            "test_token_acc": token_acc, "test_exact_match": exact,
                            "copy_baseline_token_acc": copy_acc,
                            "majority_baseline_token_acc": majority_acc}, answers={
        "smoothing_floor": (floor_answer, f"smoothed loss (eps {SMOOTHING}, {VOCAB} tokens) at the smoothed "
                                          f"target itself {floor:.3f}, at a confident one-hot prediction "
                                          f"{confident:.3f}; training loss, last 10 steps {last:.3f}"),
        "cross_attention": (pattern, f"last layer, head average, {n_val} validation strings: mean weight "
                                     f"on source position n-1-t {anti:.2f}, on position t {diag:.2f}, "
                                     f"uniform {unif:.2f}; reversal_training.png")})


# Questions to predict before running:
# - The decoder reads BOS y1 .. y(n-1) and is scored on y1 .. yn. If you forgot the shift and
#   scored it on its own input, what training loss would you see, and what would greedy output?
# - Reversal puts output t next to input n - t: what does the sinusoidal encoding have to let
#   the model compute for that?

# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.06`) before running it;
# `python -m dlcourse check 07.06` compares your answers with what the run measures.
# PREDICT smoothing_floor (0 / 0.5 / 1): with label smoothing eps = 0.1 over 13 tokens, what is the lowest smoothed loss (nats) any prediction can reach? (hint: the entropy of the smoothed target)
# ANSWER smoothing_floor:
# PREDICT cross_attention (diagonal / anti-diagonal / uniform): where does decoder step t of the trained reverser look in the source, in its last layer's cross-attention?
# ANSWER cross_attention:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
