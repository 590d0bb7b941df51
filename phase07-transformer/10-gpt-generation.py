"""10 - Text generation: greedy, sampling, beam search, KV cache (phase 07, week 12)

Goal: turn lesson 09's GPT into a text generator: greedy decoding, temperature, top-k and
      top-p (nucleus) sampling, beam search, and a KV cache that makes each new token cost one
      position instead of the whole prefix; prove each against transformers' generate and
      logits warpers, then measure what the cache buys.
Run:  python phase07-transformer/10-gpt-generation.py            (a few minutes on a laptop CPU; not measured)
      python phase07-transformer/10-gpt-generation.py --quick    (seconds, offline, used by the tests)
Expect: greedy and beam-search (3 beams) tokens equal transformers' generate token for token;
        top-k / top-p filters equal TopKLogitsWarper / TopPLogitsWarper and a sort-free
        reference; cached logits equal uncached to ~1e-6 with the same tokens; the cache's
        speed-up grows with the length generated (printed as tokens/s at two lengths).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 1500         # optimiser steps for the character model whose samples are shown
QUICK_STEPS = 20     # --quick: the samples are noise, the checks do not need training


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math
import time

import torch
import torch.nn.functional as F

from dlcourse import check, lessons

attention = lessons.load("07.01")   # scaled_dot_product_attention, causal_mask
gpt = lessons.load("07.09")         # GPT, GPTConfig, random_hf_gpt2, load_from_hf, training

PROMPT_LEN = 5       # tokens in the random prompts of the checks
N_NEW = 20           # tokens generated in the checks (prompt + new <= context 64)
NUM_BEAMS = 3        # beam width
FILTER_ROWS = 6      # rows of random logits for the top-k / top-p checks
TOP_K = 7            # k for the checks (not 1, not the vocabulary)
TOP_PS = (0.5, 0.8, 0.95)  # p values for the checks
TEMPERATURE = 0.7    # temperature for the sampling checks
SAMPLES = 20_000     # draws for the sampling-frequency check
SIGMAS = 5           # frequency check tolerance in standard errors
CHUNKS = (7, 3, 1, 1, 4)  # cached forward fed in pieces: the prompt, then blocks and single tokens
SPEED_CFG = dict(n_positions=512, n_embd=128, n_layer=4, n_head=4)  # a longer context to time
SPEED_LENGTHS = (128, 448)  # tokens generated per timing, two lengths
QUICK_SPEED_CFG = dict(n_positions=128, n_embd=64, n_layer=2, n_head=4)  # --quick
QUICK_SPEED_LENGTHS = (32, 112)  # --quick
DEMO_PROMPT = "The "  # the character model's prompt in the samples shown
DEMO_NEW = 56        # characters generated per sample (context is 64)
NUCLEUS_PROBS = (0.5, 0.25, 0.15, 0.06, 0.04)   # the top-p question's distribution


# ---- KV cache ----
# Without a cache, generating token t+1 re-runs the model over all t previous tokens, although
# their keys and values have not changed: causal attention means no earlier position ever
# looks at a later one. A cache keeps each layer's k, v (B, H, T, hd); a step then projects
# only the new tokens, appends their k, v, and attends from the new queries to all keys.
def forward_cached(model, idx, cache=None):
    """idx (B, T) new tokens following the cached ones. cache: per layer (k, v), each
    (B, H, past, hd), or None. Returns logits (B, T, V) and the cache extended by T."""
    # EXERCISE kv_cache: positions past..past+T-1; per block: qkv of ln_1(x), append k, v to the cached ones (time axis 2), attend with rows past.. of a (past+T) causal mask, residual c_proj, then the MLP; return logits and the new cache
    B, T = idx.shape
    past = 0 if cache is None else cache[0][0].shape[2]
    assert past + T <= model.cfg.n_positions, "the KV cache cannot outgrow the context"
    pos = torch.arange(past, past + T, device=idx.device)     # new tokens' positions
    x = model.embed(idx, pos)                                 # (B, T, C)
    new_cache = []
    for i, block in enumerate(model.h):
        a = block.attn
        q, k, v = a.qkv(block.ln_1(x))                        # each (B, H, T, hd)
        if cache is not None:
            k = torch.cat([cache[i][0], k], dim=2)            # (B, H, past + T, hd)
            v = torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        # the new queries are positions past..past+T-1: those rows of the full causal mask
        mask = attention.causal_mask(past + T, device=idx.device)[past:]  # (T, past + T)
        out, _ = attention.scaled_dot_product_attention(q, k, v, mask)    # (B, H, T, hd)
        x = x + a.resid_drop(a.c_proj(a.merge_heads(out)))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.ln_f(x)), new_cache            # (B, T, V)
    # END EXERCISE


# ---- choosing the next token ----
def filter_top_k(logits, k):
    """Keep the k largest logits per row, set the rest to -inf."""
    kth = logits.topk(k, dim=-1).values[..., -1:]             # (..., 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits, p):
    """Nucleus: keep the smallest set of most likely tokens whose probability sums to >= p.
    A token is kept when the mass of the tokens ranked above it is still < p, so the token
    that crosses p (the boundary token) is kept; the most likely token always is."""
    # EXERCISE top_p: sort descending, softmax, remove a token when the mass ranked strictly above it is >= p; scatter back to vocabulary order; -inf there
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs                # mass ranked strictly above
    remove_sorted = mass_before >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))
    # END EXERCISE


def next_token_distribution(logits, temperature=1.0, top_k=None, top_p=None):
    """logits (B, V) -> probabilities (B, V): temperature, then top-k, then top-p
    (transformers' order). Temperature < 1 sharpens: softmax(z / T) -> argmax as T -> 0."""
    logits = logits / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    return logits.softmax(dim=-1)


@torch.no_grad()
def generate(model, idx, n_new, greedy=False, temperature=1.0, top_k=None, top_p=None,
             use_cache=True, generator=None, return_logits=False):
    """Append n_new tokens to idx (B, T0). Greedy takes the argmax; otherwise sample from
    next_token_distribution with torch.multinomial (the global RNG unless generator)."""
    model.eval()
    out, cache, steps_logits = idx, None, []
    feed = idx
    for _ in range(n_new):
        if use_cache:
            logits, cache = forward_cached(model, feed, cache)  # feed: prompt, then 1 token
        else:
            logits = model(out)                                 # the whole prefix every time
        logits = logits[:, -1]                                  # (B, V)
        steps_logits.append(logits)
        if greedy:
            nxt = logits.argmax(dim=-1, keepdim=True)           # (B, 1)
        else:
            probs = next_token_distribution(logits, temperature, top_k, top_p)
            nxt = torch.multinomial(probs, 1, generator=generator)
        out = torch.cat([out, nxt], dim=1)
        feed = nxt
    return (out, torch.stack(steps_logits, 1)) if return_logits else out


@torch.no_grad()
def beam_search(model, prompt, n_new, num_beams):
    """Keep the num_beams prefixes of highest total log-probability; each step extends every
    beam by every token and keeps the best num_beams of the beams x V candidates.
    prompt (1, T0). Returns the best sequence (1, T0 + n_new) and its summed log-prob."""
    # EXERCISE beam_search: each step score every (beam, token) by the beam's total + log p(token); keep the top num_beams; reorder beams AND their cache; feed the chosen tokens
    model.eval()
    logits, cache = forward_cached(model, prompt)
    beams = prompt                                             # (n_beams, T): 1 beam at first
    scores = torch.zeros(1, device=prompt.device)              # summed log-probs of the beams
    for _ in range(n_new):
        logp = F.log_softmax(logits[:, -1], dim=-1)            # (n_beams, V)
        V = logp.shape[-1]
        total = (scores[:, None] + logp).flatten()             # (n_beams * V,)
        scores, flat = total.topk(num_beams)
        beam_idx, tok = flat // V, flat % V                    # which beam, which token
        beams = torch.cat([beams[beam_idx], tok[:, None]], dim=1)
        # the surviving beams' histories moved: their cached k, v must move with them
        cache = [(k[beam_idx], v[beam_idx]) for k, v in cache]
        logits, cache = forward_cached(model, tok[:, None], cache)
    best = scores.argmax()
    return beams[best:best + 1], scores[best]
    # END EXERCISE


@torch.no_grad()
def sequence_logprob(model, seq, prompt_len):
    """Sum of log p(token | prefix) over the generated part, by one uncached forward."""
    logp = F.log_softmax(model(seq), dim=-1)                   # (1, T, V)
    return logp[0, prompt_len - 1:-1].gather(-1, seq[0, prompt_len:, None]).sum()


# ---- checks ----
def check_kv_cache(model, dev):
    """Cached forward in uneven pieces == one uncached forward, and cached generation ==
    uncached generation."""
    V = model.cfg.vocab_size
    idx = torch.randint(0, V, (2, sum(CHUNKS)), device=dev)
    with torch.no_grad():
        full = model(idx)                                      # (2, T, V)
        pieces, cache, start = [], None, 0
        for n in CHUNKS:
            logits, cache = forward_cached(model, idx[:, start:start + n], cache)
            pieces.append(logits)
            start += n
    check.close(f"KV-cached logits fed in pieces {CHUNKS} vs one uncached forward",
                torch.cat(pieces, dim=1), full, atol=1e-5)
    prompt = idx[:, :PROMPT_LEN]
    torch.manual_seed(123)
    cached, lc = generate(model, prompt, N_NEW, temperature=TEMPERATURE, return_logits=True)
    torch.manual_seed(123)
    plain, lp = generate(model, prompt, N_NEW, temperature=TEMPERATURE, use_cache=False,
                         return_logits=True)
    check.close("sampled generation: step logits with vs without the cache", lc, lp, atol=1e-5)
    check.equal("sampled generation (same seed): tokens with vs without the cache", cached, plain)


def check_filters(dev):
    """top-k / top-p against a loop-per-row reference and transformers' warpers."""
    gen = torch.Generator().manual_seed(7)
    V = 50
    logits = (2.0 * torch.randn(FILTER_ROWS, V, generator=gen)).to(dev)
    kept_k = filter_top_k(logits, TOP_K).isfinite()
    # reference without topk: a token is kept iff fewer than k tokens have larger logits
    ref_k = (logits[:, None, :] > logits[:, :, None]).sum(-1) < TOP_K
    check.equal(f"top-k (k = {TOP_K}) kept tokens vs 'fewer than k larger logits'", kept_k, ref_k)
    for p in TOP_PS:
        kept = filter_top_p(logits, p).isfinite()
        probs = logits.softmax(-1).double().cpu()
        ref = torch.zeros_like(kept, device="cpu")
        for r in range(FILTER_ROWS):           # add tokens, most likely first, until mass >= p
            mass = 0.0
            for j in probs[r].argsort(descending=True).tolist():
                ref[r, j] = True
                mass += probs[r, j].item()
                if mass >= p:
                    break
        check.equal(f"top-p (p = {p}) kept tokens vs the smallest set with mass >= p", kept, ref)
        kept_mass = (probs * kept.cpu()).sum(-1)
        without_least = kept_mass - (probs * kept.cpu()).masked_fill(~kept.cpu(), 1.0).min(-1).values
        check.true(f"top-p (p = {p}): kept mass >= p, and < p once its least likely token "
                   "is dropped", bool((kept_mass >= p).all() and (without_least < p).all()),
                   f"kept mass min {kept_mass.min():.3f}, without the boundary token max "
                   f"{without_least.max():.3f}")
    from transformers.generation import TopKLogitsWarper, TopPLogitsWarper
    check.close(f"filter_top_k vs transformers' TopKLogitsWarper({TOP_K})",
                filter_top_k(logits, TOP_K), TopKLogitsWarper(TOP_K)(None, logits.clone()), atol=0)
    for p in TOP_PS:
        check.close(f"filter_top_p vs transformers' TopPLogitsWarper({p})",
                    filter_top_p(logits, p), TopPLogitsWarper(p)(None, logits.clone()), atol=0)
    # Sampling: the frequencies of SAMPLES draws match the filtered, tempered distribution.
    probs = next_token_distribution(logits[:1], TEMPERATURE, TOP_K, TOP_PS[1])   # (1, V)
    draws = torch.multinomial(probs.expand(SAMPLES, V).contiguous(), 1,
                              generator=torch.Generator(dev).manual_seed(1) if dev.type != "mps"
                              else None).flatten()
    freq = torch.bincount(draws, minlength=V).double() / SAMPLES
    p_ref = (logits[0].double() / TEMPERATURE).softmax(-1)
    allowed = filter_top_p(filter_top_k(logits[:1] / TEMPERATURE, TOP_K), TOP_PS[1]).isfinite()[0]
    p_ref = torch.where(allowed, p_ref, 0.0)
    p_ref = p_ref / p_ref.sum()                                 # renormalised over the kept set
    se = (p_ref * (1 - p_ref) / SAMPLES).sqrt() + 1e-12
    check.less(f"sampling frequencies vs softmax(z / {TEMPERATURE}) renormalised over top-k "
               f"and top-p (worst |diff| in std errors; 0 outside the kept set)",
               ((freq - p_ref).abs() / se).max(), SIGMAS)


def check_against_transformers(run):
    """Greedy, sampling and beam search vs transformers' generate on the same weights."""
    cfg = gpt.GPTConfig()
    hf = gpt.random_hf_gpt2(cfg, run.device)
    model = gpt.load_from_hf(gpt.GPT(cfg).to(run.device).eval(), hf.state_dict())
    prompt = torch.randint(0, cfg.vocab_size, (2, PROMPT_LEN), device=run.device)
    ones = torch.ones_like(prompt)
    with torch.no_grad():
        ref = hf.generate(prompt, attention_mask=ones, do_sample=False, max_new_tokens=N_NEW,
                          min_new_tokens=N_NEW)
    for use_cache in (True, False):
        ours = generate(model, prompt, N_NEW, greedy=True, use_cache=use_cache)
        check.equal(f"greedy tokens ({'with' if use_cache else 'without'} KV cache) vs "
                    f"transformers' generate(do_sample=False), batch 2 x {N_NEW} new", ours, ref)
    # Sampling with the same global seed: transformers applies temperature, top-k, top-p in
    # that order and draws with torch.multinomial, as generate() above does.
    settings = dict(temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_PS[1])
    torch.manual_seed(run.seed + 10)
    with torch.no_grad():
        ref = hf.generate(prompt, attention_mask=ones, do_sample=True, max_new_tokens=N_NEW,
                          min_new_tokens=N_NEW, **settings)
    torch.manual_seed(run.seed + 10)
    ours = generate(model, prompt, N_NEW, **settings)
    check.equal(f"sampled tokens (same seed, {settings}) vs transformers' generate", ours, ref)

    beam_prompt = prompt[:1]
    seq, score = beam_search(model, beam_prompt, N_NEW, NUM_BEAMS)
    with torch.no_grad():
        out = hf.generate(beam_prompt, attention_mask=ones[:1], do_sample=False,
                          num_beams=NUM_BEAMS, max_new_tokens=N_NEW, min_new_tokens=N_NEW,
                          length_penalty=1.0, early_stopping=True, output_scores=True,
                          return_dict_in_generate=True)
    check.equal(f"beam search ({NUM_BEAMS} beams) tokens vs transformers' generate(num_beams="
                f"{NUM_BEAMS})", seq, out.sequences)
    # transformers reports sum(log p) / (new tokens ** length_penalty)
    check.close("beam score / new tokens vs transformers' sequences_scores", score / N_NEW,
                out.sequences_scores[0], atol=1e-5)
    check.close("beam score vs the sequence's log-prob recomputed without the cache", score,
                sequence_logprob(model, seq, PROMPT_LEN), atol=1e-4)
    greedy_seq = generate(model, beam_prompt, N_NEW, greedy=True)
    g_score = sequence_logprob(model, greedy_seq, PROMPT_LEN).item()
    # not a check: beam search usually beats greedy, but need not (the greedy path can fall
    # out of the beam early and be better at the end)
    print(f"total log-prob of {N_NEW} new tokens: beam search {score.item():.3f}, greedy "
          f"{g_score:.3f}")
    return model, score.item(), g_score


def time_generation(run):
    """Tokens per second with and without the KV cache, at two lengths."""
    cfg = gpt.GPTConfig(vocab_size=gpt.CHECK_VOCAB,
                        **(QUICK_SPEED_CFG if run.quick else SPEED_CFG))
    lengths = QUICK_SPEED_LENGTHS if run.quick else SPEED_LENGTHS
    torch.manual_seed(run.seed)
    model = gpt.GPT(cfg).to(run.device).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, 8), device=run.device)
    rates = {}
    for n in lengths:
        for use_cache in (True, False):
            generate(model, prompt, 4, greedy=True, use_cache=use_cache)      # warm-up
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = generate(model, prompt, n, greedy=True, use_cache=use_cache)
            out.tolist()                                    # waits for the device
            rates[(n, use_cache)] = n / (time.perf_counter() - t0)
        print(f"{n:4d} new tokens: {rates[(n, True)]:8.0f} tokens/s cached, "
              f"{rates[(n, False)]:8.0f} uncached: speed-up x{rates[(n, True)] / rates[(n, False)]:.1f}")
    print("uncached, token t costs a forward over t positions (total ~ n^2 / 2 position-"
          "passes); cached, one position attending to t keys: the gap widens with n")
    return {f"tokens_per_s_{'cached' if c else 'uncached'}_{n}": r for (n, c), r in rates.items()}


def demo_samples(run):
    """Sample from a character model trained with lesson 09's loop."""
    model, codec, _, _, (best_val, _, _) = gpt.train_char_gpt(run, run.steps)
    print(f"character model trained for {run.steps} steps: validation loss {best_val:.3f}")
    prompt = codec.encode(DEMO_PROMPT)[None].to(run.device)    # (1, T0)
    gen = torch.Generator(run.device).manual_seed(run.seed) if run.device.type != "mps" else None
    ways = {"greedy": dict(greedy=True), f"temperature {TEMPERATURE}": dict(temperature=TEMPERATURE),
            f"top-k {TOP_K}": dict(top_k=TOP_K), f"top-p {TOP_PS[1]}": dict(top_p=TOP_PS[1])}
    for name, kw in ways.items():
        out = generate(model, prompt, DEMO_NEW, generator=gen, **kw)
        print(f"--- {name}:\n{codec.decode(out[0].tolist())!r}")
    seq, _ = beam_search(model, prompt, DEMO_NEW, NUM_BEAMS)
    print(f"--- beam search ({NUM_BEAMS} beams):\n{codec.decode(seq[0].tolist())!r}")
    return best_val


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)
    model, beam_lp, greedy_lp = check_against_transformers(run)
    check_kv_cache(model, run.device)
    check_filters(run.device)
    rates = time_generation(run)
    val = demo_samples(run)
    # the answers to the questions at the end of the file, measured with this lesson's functions
    nucleus = torch.tensor([NUCLEUS_PROBS]).log()
    kept = int(filter_top_p(nucleus, TOP_PS[1]).isfinite().sum())
    z = 2.0 * torch.randn(FILTER_ROWS, 50, generator=torch.Generator().manual_seed(7))
    top1, top_t = z.softmax(-1).max(-1).values, next_token_distribution(z, TEMPERATURE).max(-1).values
    answers = {
        "top_p_kept": (str(kept), f"filter_top_p(p = {TOP_PS[1]}) on probabilities {NUCLEUS_PROBS} "
                                  f"keeps {kept}"),
        "temperature_top": ("up" if (top_t > top1).all() else "down" if (top_t < top1).all() else "same",
                            f"largest probability of {FILTER_ROWS} random rows: "
                            f"{top1.mean():.3f} at T = 1, {top_t.mean():.3f} at T = {TEMPERATURE} (mean)"),
    }
    return cli.finish(run, {"steps": run.steps, "beam_logprob": beam_lp,
                            "greedy_logprob": greedy_lp, "char_model_val_loss": val, **rates},
                      answers=answers)


# Questions to think about:
# - With a KV cache, what position id does the 10th generated token need, and what if you
#   pass 0 as for a fresh input?
# - Does beam search with 3 beams always find a sequence at least as likely as greedy's?
# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.10`) before running it;
# `python -m dlcourse check 07.10` compares your answers with what the run measures.
# PREDICT top_p_kept (1 / 2 / 3 / 4 / 5): top-p = 0.8 on next-token probabilities (0.5, 0.25, 0.15, 0.06, 0.04): how many tokens are kept?
# ANSWER top_p_kept:
# PREDICT temperature_top (up / down / same): at temperature 0.7 the most likely token's probability goes?
# ANSWER temperature_top:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
