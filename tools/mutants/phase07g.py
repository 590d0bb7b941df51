"""Planted mistakes for phase 07, lesson 06 (the full Transformer) and capstone 1 (translation)
(see tools/mutate.py): each a realistic one-line slip, which a self-check must catch."""
MUTANTS = [
    # 06 - the full encoder-decoder Transformer
    dict(lesson="07.06", why="token embeddings not scaled by sqrt(d_model)",
         find="table(ids) * math.sqrt(self.cfg.d_model)", replace="table(ids)"),
    dict(lesson="07.06", why="decoder self-attention given the padding mask only, not the causal mask",
         find="dec.target_mask(tgt_kpm),", replace="enc.from_key_padding_mask(tgt_kpm),"),
    dict(lesson="07.06", why="cross-attention may look at padded source positions",
         find="enc.from_key_padding_mask(src_kpm))          # (B, 1, 1, Ts)",
         replace="None)"),
    dict(lesson="07.06", why="generator not tied to the target embedding",
         find="self.generator.weight = self.tgt_embed.weight   # one", replace="pass  # one"),
    dict(lesson="07.06", why="incremental step: positional encoding restarts at 0 for every new token",
         find="self.pe[start:start + T]", replace="self.pe[:T]"),
    dict(lesson="07.06", why="incremental step, post-LN: the new position attends only to itself",
         find="layer.self_attn(x, seq, seq)", replace="layer.self_attn(x, x, x)"),
    dict(lesson="07.06", why="incremental step, pre-LN: keys and values not normalised",
         find="kv = layer.norm1(seq)", replace="kv = seq"),
    dict(lesson="07.06", why="label smoothing spreads eps over the V-1 wrong tokens (not PyTorch's V)",
         find="uniform = -logp.mean(dim=-1)",
         replace="uniform = -(logp.sum(-1) + nll) / (logp.shape[-1] - 1)"),
    dict(lesson="07.06", why="pad positions averaged into the loss",
         find="return loss[real].sum() / real.sum()", replace="return loss.mean()"),
    dict(lesson="07.06", why="warm-up slope written with warmup^-0.5 (peak no longer at warmup)",
         find="step * warmup ** -1.5", replace="step * warmup ** -0.5"),
    dict(lesson="07.06", why="teacher forcing without the shift: each position is scored on its own input",
         find="tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]", replace="tgt_in, tgt_out = tgt[:, :-1], tgt[:, :-1]"),
]
MUTANTS += [
    # capstone 1 - translation of number words
    dict(lesson="07.capstone1", why="tokenizer drops punctuation (the commas and hyphens)",
         find=r'''re.findall(r"\w+|[^\w\s]", text)''', replace=r'''re.findall(r"\w+", text)'''),
    dict(lesson="07.capstone1", why="detokenizer leaves a space before commas",
         find='''.replace(" - ", "-").replace(" ,", ",")''', replace='''.replace(" - ", "-")'''),
    dict(lesson="07.capstone1", why="training split overlaps the validation numbers",
         find="[pairs[i] for i in order[:n_train]]", replace="[pairs[i] for i in order[:n_train + n_val]]"),
    dict(lesson="07.capstone1", why="references for the id-level exact match not shifted past BOS",
         find="ref_ids = torch.nn.functional.pad(test_tgt[:, 1:]",
         replace="ref_ids = torch.nn.functional.pad(test_tgt[:, :-1]"),
    dict(lesson="07.capstone1", why="checkpoint written from a perturbed copy of the weights (the file does not hold the model that was evaluated)",
         find='''"model": model.state_dict(), "config"''',
         replace='''"model": {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}, "config"'''),
]
