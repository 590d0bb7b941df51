"""07 - BERT from scratch (phase 07, week 11)

Goal: build BERT (word + learned position + segment embeddings, a LayerNorm; a stack of
      post-LN encoder layers with erf-GELU and LayerNorm eps 1e-12; a tanh pooler on [CLS];
      an MLM head tied to the word embeddings) on lesson 04's EncoderLayer, map transformers'
      state-dict keys onto ours, get the same outputs as BertModel and BertForMaskedLM, see
      that an encoder looks both ways, and write the 15% / 80-10-10 masking recipe of MLM.
Run:  python phase07-transformer/07-bert-architecture.py            (same sizes, more masking draws; 26 s wall, 8 s CPU, on a busy 2-core CPU)
      python phase07-transformer/07-bert-architecture.py --quick    (seconds, offline, used by the tests)
Expect: sequence output, pooled output and MLM logits equal transformers' to ~1e-6 (<= 1e-5
        checked) with padding that removes real positions and two segments; pad tokens change
        nothing at real positions (max |diff| 0); changing the last token changes position 1's
        output (bidirectional); mask_tokens selects 15.0% of ordinary tokens, of which 80% become
        [MASK], ~10% a random token, ~10% stay, within 5 binomial standard deviations, and never
        a special token; bert.png shows the influence matrix and the masking rates.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import copy
import re
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

enc = lessons.load("07.04")   # EncoderLayer (on 07.02's MultiHeadAttention), from_key_padding_mask

# ---- sizes for the comparison with transformers (no two alike, so a swapped axis shows) ----
VOCAB = 97            # tokens (bert-base-uncased: 30522)
HIDDEN = 24           # model width H (bert-base: 768)
N_LAYERS = 2          # encoder layers (bert-base: 12)
N_HEADS = 3           # heads: head_dim 8 (bert-base: 12 heads of 64)
INTERMEDIATE = 40     # feed-forward width (bert-base: 3072 = 4 H)
MAX_POSITION = 16     # learned positions (bert-base: 512)
TYPE_VOCAB = 2        # segments A and B
LAYER_NORM_EPS = 1e-12  # BERT's epsilon (PyTorch's default is 1e-5)
B, T = 3, 11          # batch, length: T != H != heads != head_dim
LENGTHS = [11, 7, 4]  # real tokens per row: padding removes real positions in rows 1 and 2
SEGMENT_A = [5, 3, 2] # tokens in segment A ([CLS] a.. [SEP]) per row; the rest of the real ones is B
WEIGHT_STD = 0.1      # std of the random weights given to the reference (its own init zeroes
                      # biases and sets LayerNorm to identity, which would hide mistakes)
TINY_EMBED_STD = 1e-3 # word/position/segment std for the epsilon check: variance ~1e-6, where
                      # eps 1e-12 and 1e-5 give visibly different LayerNorm outputs
TOL = 1e-5            # float32 through 2 layers: differences are ~1e-6

# ---- special tokens (07.08's word vocabulary uses the same ids) ----
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = (PAD, UNK, CLS, SEP, MASK)  # never masked, never drawn as a random replacement

# ---- the MLM masking recipe (Devlin et al. 2019, section 3.1 and appendix C.2) ----
MLM_PROB = 0.15       # fraction of ordinary tokens selected for prediction
MASK_FRAC = 0.8       # of those: replaced by [MASK]
RANDOM_FRAC = 0.1     # of those: replaced by a random ordinary token (the rest stay unchanged)
MASK_ROWS, MASK_LEN = 2000, 64  # token grid for the frequency check (128k tokens per draw)
MASK_DRAWS = 4        # draws of that grid (full run)
N_SIGMA = 5           # tolerance in binomial standard deviations (a 5-sigma miss: p ~ 6e-7)
QUICK_MASK_DRAWS = 1  # --quick: one draw is enough for the tolerances above


@dataclass
class BertConfig:
    vocab_size: int = VOCAB
    hidden: int = HIDDEN
    n_layers: int = N_LAYERS
    n_heads: int = N_HEADS
    intermediate: int = INTERMEDIATE
    max_position: int = MAX_POSITION
    type_vocab: int = TYPE_VOCAB
    dropout: float = 0.1          # embeddings, attention weights, residual branches (BERT: 0.1)
    eps: float = LAYER_NORM_EPS


# ---------------------------------------------------------------- the model (07.08 loads it)
class BertEmbeddings(nn.Module):
    """ids (B, T), segments (B, T) -> LayerNorm(word + position + segment), then dropout.
    Unlike the original Transformer, every one of the three is a learned table, and the sum is
    normalised before the first layer (BERT's layers are post-LN, so nothing else would)."""

    def __init__(self, cfg):
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position = nn.Embedding(cfg.max_position, cfg.hidden)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, input_ids, token_type_ids):
        # EXERCISE embeddings: positions 0..T-1; add the word, position and segment (token type) embeddings, then LayerNorm, then dropout
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device)                     # (T,) 0..T-1
        x = self.word(input_ids) + self.position(pos) + self.token_type(token_type_ids)  # (B, T, H)
        return self.dropout(self.norm(x))
        # END EXERCISE


class BertLayer(enc.EncoderLayer):
    """Lesson 04's post-LN EncoderLayer with activation 'gelu' (erf, as BERT's 'gelu') and
    eps 1e-12 is BERT's layer, submodule for submodule. One difference: 07.04 puts dropout
    after the activation inside the FFN too (as nn.TransformerEncoderLayer does); BERT drops
    out only the FFN's output. In eval mode they agree; in training they would not, so the
    FFN is overridden here rather than trained with an extra dropout BERT never had."""

    def __init__(self, cfg):
        super().__init__(cfg.hidden, cfg.n_heads, cfg.intermediate, dropout=cfg.dropout,
                         norm_first=False, activation="gelu", eps=cfg.eps)

    def _feed_forward(self, x):                                             # (B, T, H)
        return self.dropout(self.linear2(self.activation(self.linear1(x))))


class Bert(nn.Module):
    """BertModel: embeddings -> n_layers BertLayers -> (sequence_output, pooled).
    pooled = tanh(W h[CLS] + b): trained by next-sentence prediction in the original BERT,
    and what BertForSequenceClassification puts its classifier on."""

    def __init__(self, cfg, with_pooler=True):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.layers = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.n_layers))
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden) if with_pooler else None
        self.apply(init_bert_weights)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        """input_ids (B, T); token_type_ids (B, T) segment 0/1 (default all 0); attention_mask
        (B, T) 1 = real token, 0 = padding (default all real). Returns (B, T, H), (B, H)."""
        # EXERCISE bert_forward: segments default to 0; attention_mask 1 = real becomes enc.from_key_padding_mask's True = pad (no mask: None); embeddings, every layer; pooled = tanh(pooler(h at [CLS], position 0))
        Bn, T = input_ids.shape
        assert T <= self.cfg.max_position, f"length {T} > max_position {self.cfg.max_position}"
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None
        if attention_mask is not None:
            # (B, T) 1 = real -> (B, 1, 1, T) True = may attend: padding removes keys for every
            # query; padded queries still get an output, which nobody reads
            mask = enc.from_key_padding_mask(attention_mask == 0)
        x = self.embeddings(input_ids, token_type_ids)                      # (B, T, H)
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None  # (B, H)
        return x, pooled
        # END EXERCISE


class MLMHead(nn.Module):
    """BertForMaskedLM's head: h -> LayerNorm(GELU(dense h)) -> h' E^T + b, with E the word
    embedding matrix (tied: the same tensor reads tokens in and scores them out)."""

    def __init__(self, cfg, word_embeddings):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.decoder = nn.Linear(cfg.hidden, cfg.vocab_size)
        self.decoder.weight = word_embeddings.weight                       # tied, (V, H)

    def forward(self, h):                                                   # (B, T, H)
        return self.decoder(self.norm(F.gelu(self.dense(h))))             # (B, T, V)


class BertMLM(nn.Module):
    """BertForMaskedLM: the encoder without the pooler (MLM never reads it) and the MLM head."""

    def __init__(self, cfg):
        super().__init__()
        self.bert = Bert(cfg, with_pooler=False)
        self.head = MLMHead(cfg, self.bert.embeddings.word)
        nn.init.zeros_(self.head.decoder.bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        h, _ = self.bert(input_ids, token_type_ids, attention_mask)
        return self.head(h)                                                 # (B, T, V) logits


def init_bert_weights(m):
    """BERT's init: N(0, 0.02) for every matrix and table, zero biases, LayerNorm (1, 0)."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
    if isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- transformers' names -> ours
# transformers' BERT keeps the original TensorFlow code's module tree: attention.self.query,
# attention.output.dense (the out projection), intermediate.dense / output.dense (the FFN).
# Order matters: 'attention.output.*' must be renamed before the bare 'output.*'.
HF_TO_OURS = [
    (r"embeddings\.word_embeddings\.", "embeddings.word."),
    (r"embeddings\.position_embeddings\.", "embeddings.position."),
    (r"embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"encoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"attention\.self\.query\.", "self_attn.q_proj."),
    (r"attention\.self\.key\.", "self_attn.k_proj."),
    (r"attention\.self\.value\.", "self_attn.v_proj."),
    (r"attention\.output\.dense\.", "self_attn.out_proj."),
    (r"attention\.output\.LayerNorm\.", "norm1."),
    (r"intermediate\.dense\.", "linear1."),
    (r"output\.dense\.", "linear2."),
    (r"output\.LayerNorm\.", "norm2."),
    (r"pooler\.dense\.", "pooler."),
    (r"^cls\.predictions\.transform\.dense\.", "head.dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "head.norm."),
    (r"^cls\.predictions\.decoder\.", "head.decoder."),
    (r"^cls\.predictions\.bias$", "head.decoder.bias"),   # the same tensor as decoder.bias
]   # classifier.weight / classifier.bias (07.08) keep their names


def map_key(hf_key):
    key = hf_key
    for pattern, repl in HF_TO_OURS:
        key = re.sub(pattern, repl, key)
    return key


def load_from_hf(mine, hf_state, show=0):
    """Copy a transformers BERT state dict (BertModel, BertForMaskedLM or
    BertForSequenceClassification) into ours, strictly: every key of ours filled, no extras.
    Tied tensors appear in a state dict under each of their names; both copies must agree."""
    mapped = {}
    for hf_key, value in hf_state.items():
        if hf_key.endswith(("position_ids", "token_type_ids")):
            continue                      # buffers some transformers versions store: not weights
        key = map_key(hf_key)
        if key in mapped:
            assert torch.equal(mapped[key], value), f"{hf_key}: two different tensors for {key}"
        mapped[key] = value
    for hf_key in list(hf_state)[:show]:
        print(f"    {hf_key:<48s} -> {map_key(hf_key)}")
    mine.load_state_dict(mapped, strict=True)
    return mine


def hf_config(cfg, **extra):
    from transformers import BertConfig as HFBertConfig
    return HFBertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden,
                        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                        intermediate_size=cfg.intermediate, max_position_embeddings=cfg.max_position,
                        type_vocab_size=cfg.type_vocab, hidden_act="gelu",
                        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
                        layer_norm_eps=cfg.eps, pad_token_id=PAD, **extra)


def random_hf_bert(cfg, device, model_class=None, std=WEIGHT_STD, **extra):
    """A transformers BERT (BertModel unless model_class says otherwise) of config cfg with
    every weight random and non-trivial: LayerNorm scales 1 + std N(0,1), everything else
    std N(0,1). Tied tensors are listed once by named_parameters, so they stay tied."""
    if model_class is None:
        from transformers import BertModel as model_class
    hf = model_class(hf_config(cfg, **extra)).to(device).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            base = 1.0 if "LayerNorm.weight" in name else 0.0
            p.copy_(base + std * torch.randn_like(p))
    return hf


# ---------------------------------------------------------------- MLM masking (07.08 loads it)
def mask_tokens(ids, vocab_size, mask_id=MASK, special_ids=SPECIAL, gen=None,
                mlm_prob=MLM_PROB, mask_frac=MASK_FRAC, random_frac=RANDOM_FRAC):
    """BERT's masked-LM corruption. ids (B, T) -> (inputs, labels), both (B, T):
    each ordinary token is selected with probability mlm_prob (special tokens never); a
    selected token becomes [MASK] with probability mask_frac, a random ordinary token with
    probability random_frac, and stays itself otherwise. labels = the original id where
    selected, -100 (cross_entropy's ignore_index) elsewhere: the loss is on selected tokens only.
    Why not always [MASK]? [MASK] never occurs at fine-tuning time; the random and unchanged
    cases make the model keep a good representation of every input token, not only of [MASK].
    Random draws on `gen` (CPU); differs from transformers' collator in one respect: random
    replacements are drawn from ordinary tokens only (it draws from the whole vocabulary)."""
    assert 0 < mlm_prob < 1 and mask_frac + random_frac <= 1, "probabilities out of range"
    # EXERCISE mask_tokens: on a copy: select non-special tokens w.p. mlm_prob; one uniform u each: u < mask_frac -> mask_id, the next random_frac -> a random ORDINARY token, else keep; labels -100 where not selected
    cpu = ids.cpu()
    special = torch.isin(cpu, torch.tensor(special_ids))                      # (B, T)
    chosen = (torch.rand(cpu.shape, generator=gen) < mlm_prob) & ~special     # (B, T)
    labels = torch.where(chosen, cpu, torch.full_like(cpu, -100))
    u = torch.rand(cpu.shape, generator=gen)                                  # one draw decides the case
    to_mask = chosen & (u < mask_frac)
    to_random = chosen & (u >= mask_frac) & (u < mask_frac + random_frac)
    ordinary = torch.tensor([t for t in range(vocab_size) if t not in special_ids])
    inputs = cpu.clone()
    inputs[to_mask] = mask_id
    inputs[to_random] = ordinary[torch.randint(len(ordinary), (int(to_random.sum()),), generator=gen)]
    return inputs.to(ids.device), labels.to(ids.device)
    # END EXERCISE


def masking_rates(ids, inputs, labels, mask_id, special_ids):
    """Counts of what happened to the ordinary tokens: selected, and of those [MASK] /
    another token / unchanged."""
    ordinary = ~torch.isin(ids, torch.tensor(special_ids, device=ids.device))
    sel = labels != -100
    return {"ordinary": int(ordinary.sum()), "selected": int((sel & ordinary).sum()),
            "mask": int((sel & (inputs == mask_id)).sum()),
            "random": int((sel & (inputs != mask_id) & (inputs != ids)).sum()),
            "kept": int((sel & (inputs == ids)).sum())}


# ---------------------------------------------------------------- checks
def make_batch(gen, device, vocab=VOCAB):
    """[CLS] segment A [SEP] segment B [SEP] [PAD]... for each row; ids, token types, mask."""
    ids = torch.randint(len(SPECIAL), vocab, (B, T), generator=gen)           # ordinary tokens
    tt = torch.zeros(B, T, dtype=torch.long)
    am = torch.zeros(B, T, dtype=torch.long)
    for b, (n, a) in enumerate(zip(LENGTHS, SEGMENT_A)):
        ids[b, 0], ids[b, a - 1], ids[b, n - 1] = CLS, SEP, SEP
        ids[b, n:] = PAD
        tt[b, a:n] = 1                                                        # segment B
        am[b, :n] = 1
    return ids.to(device), tt.to(device), am.to(device)


def check_against_transformers(run, gen):
    from transformers import BertForMaskedLM
    dev = run.device
    cfg = BertConfig()
    t0 = time.perf_counter()
    hf = random_hf_bert(cfg, dev)
    print("--- transformers' keys -> ours (first few of", len(hf.state_dict()), "):")
    mine = load_from_hf(Bert(cfg).to(dev), hf.state_dict(), show=8).eval()
    print(f"built BertModel and copied its weights in {time.perf_counter() - t0:.1f} s")
    check.equal("parameter count: ours vs BertModel",
                sum(p.numel() for p in mine.parameters()), sum(p.numel() for p in hf.parameters()))
    ids, tt, am = make_batch(gen, dev)
    real = am.bool()                                                          # (B, T)
    res = {}
    with torch.no_grad():
        seq, pooled = mine(ids, tt, am)
        ref = hf(input_ids=ids, token_type_ids=tt, attention_mask=am)
        res["seq"] = check.close(f"sequence output ({B}x{T}x{cfg.hidden}, padding, 2 segments) "
                                 "vs BertModel", seq, ref.last_hidden_state, atol=TOL)
        res["pooled"] = check.close("pooled output tanh(W h[CLS] + b) vs BertModel",
                                    pooled, ref.pooler_output, atol=TOL)

        # LayerNorm epsilon: with embeddings ~1e-3 the variance is ~1e-6, so eps 1e-5 vs 1e-12
        # changes the normalised embedding by a factor ~ sqrt(1e-6 / (1e-6 + 1e-5)) ~ 0.3
        tiny = random_hf_bert(cfg, dev)
        for table in (tiny.embeddings.word_embeddings, tiny.embeddings.position_embeddings,
                      tiny.embeddings.token_type_embeddings):
            table.weight.mul_(TINY_EMBED_STD / WEIGHT_STD)
        mine_tiny = load_from_hf(Bert(cfg).to(dev), tiny.state_dict()).eval()
        check.close("embedding output with tiny embeddings (LayerNorm eps 1e-12 matters) vs BertModel",
                    mine_tiny.embeddings(ids, tt), tiny.embeddings(input_ids=ids, token_type_ids=tt),
                    atol=TOL)

        print("--- padding: what the pad tokens are must not matter at real positions")
        other = ids.clone()
        other[~real] = torch.randint(len(SPECIAL), cfg.vocab_size, (int((~real).sum()),),
                                     generator=gen).to(dev)
        other_tt = tt.masked_fill(~real, 1)
        seq2, pooled2 = mine(other, other_tt, am)
        res["pad"] = check.close("real positions after changing the pad tokens and their segments",
                                 seq2[real], seq[real], atol=1e-6)
        seq3, _ = mine(other, other_tt, None)
        check.greater("...while without the attention mask the real positions do change (max |diff|)",
                      (seq3[real] - seq[real]).abs().max(), 1e-3)

        print("--- bidirectional: a later token changes an earlier position's output")
        b, n = 0, LENGTHS[0]
        influence = torch.zeros(n, n)                                         # (changed j, output i)
        for j in range(n):
            changed = ids.clone()
            changed[b, j] = PAD + 5 + (int(changed[b, j]) - 4) % (cfg.vocab_size - 5)  # another ordinary id
            out, _ = mine(changed, tt, am)
            influence[j] = (out[b, :n] - seq[b, :n]).abs().amax(-1).cpu()
        check.greater(f"output at position 1 when token {n - 2} (after it) changes: max |diff|",
                      influence[n - 2, 1], 1e-3)
        check.greater("smallest effect of any token on any position (a causal model would give 0 "
                      "above the diagonal)", influence.min(), 1e-4)

        print("--- MLM head vs BertForMaskedLM (decoder tied to the word embeddings)")
        hf_mlm = random_hf_bert(cfg, dev, model_class=BertForMaskedLM)
        mlm = load_from_hf(BertMLM(cfg).to(dev), hf_mlm.state_dict()).eval()
        check.true("our MLM decoder is the word embedding (tied)",
                   mlm.head.decoder.weight.data_ptr() == mlm.bert.embeddings.word.weight.data_ptr())
        res["mlm"] = check.close(f"MLM logits ({B}x{T}x{cfg.vocab_size}) vs BertForMaskedLM",
                                 mlm(ids, tt, am), hf_mlm(input_ids=ids, token_type_ids=tt,
                                                          attention_mask=am).logits, atol=TOL)
        # for the question at the end: the same weights with PyTorch's default eps 1e-5
        eps5 = copy.deepcopy(mine)
        for m in eps5.modules():
            if isinstance(m, nn.LayerNorm):
                m.eps = 1e-5
        res["eps5"] = (eps5(ids, tt, am)[0][real] - seq[real]).abs().max().item()
    return res, influence


def check_masking(run, gen):
    """mask_tokens' frequencies against the recipe's exact probabilities."""
    dev = run.device
    draws = QUICK_MASK_DRAWS if run.quick else MASK_DRAWS
    total = {}
    special_pos = torch.zeros(MASK_ROWS, MASK_LEN, dtype=torch.bool)
    for _ in range(draws):
        ids = torch.randint(len(SPECIAL), VOCAB, (MASK_ROWS, MASK_LEN), generator=gen)
        ids[:, 0] = CLS                                                       # special positions:
        ids[:, MASK_LEN // 2] = SEP                                           # [CLS], a [SEP],
        ids[:, -5:] = PAD                                                     # padding, an [UNK]
        ids[:, 3] = UNK
        special_pos = torch.isin(ids, torch.tensor(SPECIAL))
        ids = ids.to(dev)
        before = ids.clone()
        inputs, labels = mask_tokens(ids, VOCAB, gen=gen)
        sel = labels != -100
        if not total:                                                         # first draw only
            check.equal("mask_tokens leaves its input unchanged (works on a copy)", ids, before)
            check.equal("labels = the original id at every selected position",
                        labels[sel], ids[sel])
            check.equal("special tokens: never selected, never changed",
                        int(sel.cpu()[special_pos].sum() + (inputs != ids).cpu()[special_pos].sum()), 0)
            replaced = sel & (inputs != MASK) & (inputs != ids)
            check.equal("random replacements are never special tokens",
                        int(torch.isin(inputs[replaced].cpu(), torch.tensor(SPECIAL)).sum()), 0)
        for k, v in masking_rates(ids, inputs, labels, MASK, SPECIAL).items():
            total[k] = total.get(k, 0) + v
    K = VOCAB - len(SPECIAL)   # ordinary tokens a random replacement is drawn from
    # a random draw equals the original token with probability 1/K: it then counts as 'kept'
    expected = {"selected": (MLM_PROB, total["ordinary"]),
                "mask": (MASK_FRAC, total["selected"]),
                "random": (RANDOM_FRAC * (1 - 1 / K), total["selected"]),
                "kept": (1 - MASK_FRAC - RANDOM_FRAC * (1 - 1 / K), total["selected"])}
    rates = {}
    print(f"--- masking rates over {total['ordinary']:,} ordinary tokens ({draws} draw(s))")
    for k, (p, n) in expected.items():
        rate = total[k] / n
        sd = (p * (1 - p) / n) ** 0.5                                         # binomial std of a rate
        check.close(f"{k:8s} rate {rate:.4f} vs {p:.4f} (n {n:,}; tolerance {N_SIGMA} sd)",
                    rate, p, atol=N_SIGMA * sd)
        rates[k] = rate
    return rates


def collator_demo(gen):
    """transformers' DataCollatorForLanguageModeling on the same kind of grid (library rates,
    shown for comparison; it draws random replacements from the whole vocabulary)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast
    names = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {**{n: i for i, n in enumerate(names)}, **{f"w{i}": i for i in range(len(SPECIAL), VOCAB)}}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="[UNK]")),
                                  pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=MLM_PROB, seed=seed)
    ids = torch.randint(len(SPECIAL), VOCAB, (MASK_ROWS, MASK_LEN), generator=gen)
    ids[:, 0], ids[:, -5:] = CLS, PAD
    special = torch.isin(ids, torch.tensor(SPECIAL))
    inputs, labels = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special)
    r = masking_rates(ids, inputs, labels, MASK, SPECIAL)
    check.close(f"DataCollatorForLanguageModeling selects {r['selected'] / r['ordinary']:.4f} "
                f"(recipe {MLM_PROB})", r["selected"] / r["ordinary"], MLM_PROB, atol=0.01, demo=True)
    print(f"    of those: [MASK] {r['mask'] / r['selected']:.3f}, random {r['random'] / r['selected']:.3f}, "
          f"kept {r['kept'] / r['selected']:.3f}")


def compare_pretrained(run):
    """Online only: bert-base-uncased from the hub, loaded into ours, compared the same way."""
    if run.offline or not data.network_available(data.hf_host()):
        print("(online part skipped: bert-base-uncased needs the network)")
        return None
    from transformers import AutoTokenizer, BertModel
    hf = BertModel.from_pretrained("bert-base-uncased", attn_implementation="eager").to(run.device).eval()
    tok = AutoTokenizer.from_pretrained("bert-base-uncased")
    c = hf.config
    cfg = BertConfig(c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                     c.intermediate_size, c.max_position_embeddings, c.type_vocab_size, 0.0,
                     c.layer_norm_eps)
    mine = load_from_hf(Bert(cfg).to(run.device), hf.state_dict()).eval()
    enc_in = tok(["the plot was weak but the acting was superb", "not bad at all"],
                 ["i would watch it again", "fine"], padding=True, return_tensors="pt").to(run.device)
    with torch.no_grad():
        ref = hf(**enc_in)
        seq, pooled = mine(enc_in["input_ids"], enc_in["token_type_ids"], enc_in["attention_mask"])
    real = enc_in["attention_mask"].bool()
    return check.close("bert-base-uncased: sequence output at real positions vs BertModel",
                       seq[real], ref.last_hidden_state[real], atol=1e-4)


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)   # tiny matrices: threads cost more than they save
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random token ids with [CLS]/[SEP]/[PAD] placed like BERT inputs", kind="generated")
    res, influence = check_against_transformers(run, gen)
    rates = check_masking(run, gen)
    collator_demo(gen)
    pretrained = compare_pretrained(run)

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4))
    im = a0.imshow(influence.log10().numpy(), cmap="viridis")
    a0.set(xlabel="output position i", ylabel="changed token j",
           title="log10 max|change| of output i (row 0):\nevery token reaches every position")
    fig.colorbar(im, ax=a0)
    names = ["selected", "mask", "random", "kept"]
    a1.bar(names, [rates[k] for k in names], color=["grey", "tab:blue", "tab:orange", "tab:green"])
    for x, p in enumerate([MLM_PROB, MASK_FRAC, RANDOM_FRAC, 1 - MASK_FRAC - RANDOM_FRAC]):
        a1.plot([x - 0.4, x + 0.4], [p, p], "k--")
    a1.set(ylabel="rate (selected: of ordinary tokens; others: of selected)",
           title="mask_tokens: measured (bars) vs recipe (dashes)")
    plot.save(fig, run, "bert.png")
    metrics = {"max_diff_sequence": res["seq"], "max_diff_pooled": res["pooled"],
               "max_diff_mlm_logits": res["mlm"], "pad_change_at_real_positions": res["pad"],
               **{f"rate_{k}": v for k, v in rates.items()}}
    if pretrained is not None:
        metrics["max_diff_bert_base_uncased"] = pretrained
    n = LENGTHS[0]
    return cli.finish(run, metrics, answers={
        "eps_matters": ("yes" if res["eps5"] > TOL else "no",
                        f"max |diff| of the sequence output at real positions, eps 1e-5 vs 1e-12, "
                        f"random weights of std {WEIGHT_STD}: {res['eps5']:.2e} (tolerance {TOL:g})"),
        "later_token": ("yes" if influence[n - 2, 1] > 1e-3 else "no",
                        f"max |change| of position 1's output when token {n - 2} changes: "
                        f"{influence[n - 2, 1]:.3g}; smallest entry of the influence matrix "
                        f"{influence.min():.3g}; bert.png")})


# Questions to predict before running:
# - BertForMaskedLM's state dict has both cls.predictions.bias and cls.predictions.decoder.bias.
#   How many tensors is that, and what happens in our strict load if they ever differed?
# - Of the tokens mask_tokens selects, what fraction ends up exactly as it was? (Not 10%.)

# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.07`) before running it;
# `python -m dlcourse check 07.07` compares your answers with what the run measures.
# PREDICT eps_matters (yes / no): on ordinary random weights (std 0.1), does LayerNorm eps 1e-5 instead of BERT's 1e-12 move the sequence output by more than 1e-5?
# ANSWER eps_matters:
# PREDICT later_token (yes / no): does changing the second-to-last token change BERT's output at position 1?
# ANSWER later_token:

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
