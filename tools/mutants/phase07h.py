"""Planted mistakes for phase 07, lessons 07-08 and capstone 2 (BERT; see tools/mutate.py): each
a realistic one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 07 - BERT from scratch
    dict(lesson="07.07", why="pre-LN layers (GPT-2's placement) instead of BERT's post-LN",
         find='norm_first=False, activation="gelu", eps=cfg.eps)',
         replace='norm_first=True, activation="gelu", eps=cfg.eps)'),
    dict(lesson="07.07", why="tanh-approximate GELU in the MLM head (BERT's 'gelu' is erf)",
         find="self.decoder(self.norm(F.gelu(self.dense(h))))",
         replace='self.decoder(self.norm(F.gelu(self.dense(h), approximate="tanh")))'),
    dict(lesson="07.07", why="embedding LayerNorm with PyTorch's default eps 1e-5, not 1e-12",
         find="self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)\n"
              "        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)",
         replace="self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)\n"
                 "        self.norm = nn.LayerNorm(cfg.hidden)"),
    dict(lesson="07.07", why="positions counted from 1 (as RoBERTa's padding offset does)",
         find="pos = torch.arange(T, device=input_ids.device)",
         replace="pos = torch.arange(1, T + 1, device=input_ids.device)"),
    dict(lesson="07.07", why="segment embedding ignored: every token treated as segment A",
         find="+ self.token_type(token_type_ids)",
         replace="+ self.token_type(torch.zeros_like(token_type_ids))"),
    dict(lesson="07.07", why="attention mask inverted: 1 read as padding",
         find="enc.from_key_padding_mask(attention_mask == 0)",
         replace="enc.from_key_padding_mask(attention_mask == 1)"),
    dict(lesson="07.07", why="pooler reads the last position, not [CLS]",
         find="torch.tanh(self.pooler(x[:, 0]))", replace="torch.tanh(self.pooler(x[:, -1]))"),
    dict(lesson="07.07", why="MLM decoder not tied to the word embeddings",
         find="self.decoder.weight = word_embeddings.weight", replace="pass"),
    dict(lesson="07.07", why="mask_tokens may select special tokens",
         find="(torch.rand(cpu.shape, generator=gen) < mlm_prob) & ~special",
         replace="(torch.rand(cpu.shape, generator=gen) < mlm_prob)"),
    dict(lesson="07.07", why="random case drawn with the wrong threshold: 10% random became 0%",
         find="to_random = chosen & (u >= mask_frac) & (u < mask_frac + random_frac)",
         replace="to_random = chosen & (u >= mask_frac) & (u < random_frac)"),
    dict(lesson="07.07", why="mask_tokens corrupts its input in place (no copy)",
         find="inputs = cpu.clone()", replace="inputs = cpu"),
    dict(lesson="07.07", why="random replacements drawn from the whole vocabulary, specials included",
         find="inputs[to_random] = ordinary[torch.randint(len(ordinary), (int(to_random.sum()),), generator=gen)]",
         replace="inputs[to_random] = torch.randint(vocab_size, (int(to_random.sum()),), generator=gen)"),
]
MUTANTS += [
    # 08 - fine-tuning BERT
    dict(lesson="07.08", why="schedule decays over all steps, not the steps after warm-up",
         find="return max(0.0, (total - step) / max(1, total - warmup))",
         replace="return max(0.0, (total - step) / max(1, total))"),
    dict(lesson="07.08", why="arguments in transformers' order (ids, attention_mask, token types) "
                             "passed to our Bert, whose order is (ids, token types, mask)",
         find="_, pooled = self.bert(input_ids, token_type_ids, attention_mask)",
         replace="_, pooled = self.bert(input_ids, attention_mask, token_type_ids)"),
    dict(lesson="07.08", why="pre-trained encoder loaded into the classifier's top level (no key matches)",
         find="result = model.bert.load_state_dict(mlm.bert.state_dict(), strict=False)",
         replace="result = model.load_state_dict(mlm.bert.state_dict(), strict=False)"),
    dict(lesson="07.08", why="special tokens listed in another order than 07.07's ids",
         find='SPECIAL_NAMES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]',
         replace='SPECIAL_NAMES = ["[PAD]", "[UNK]", "[SEP]", "[CLS]", "[MASK]"]'),
    dict(lesson="07.08", why="the generator no longer caps each class at n/2 (unbalanced set)",
         find="if text in seen or text in test or len(by_label[label]) >= n // 2:",
         replace="if text in seen or text in test:"),
    dict(lesson="07.08", why="optimiser never stepped during fine-tuning (loss.backward only)",
         find="            nn.utils.clip_grad_norm_(model.parameters(), CLIP)\n            opt.step()\n"
              "            sched.step()\n            total += loss.item() * len(idx)",
         replace="            nn.utils.clip_grad_norm_(model.parameters(), CLIP)\n"
                 "            sched.step()\n            total += loss.item() * len(idx)"),
    # capstone 2 - BERT sentiment
    dict(lesson="07.capstone2", why="F1 computed as TP / (TP + FP + FN) (that is the Jaccard index)",
         find="return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0",
         replace="return tp / (tp + fp + fn) if tp + fp + fn else 0.0"),
    dict(lesson="07.capstone2", why="confusion matrix transposed (rows = predicted)",
         find="m[t, p] += 1", replace="m[p, t] += 1"),
    dict(lesson="07.capstone2", why="checkpoint read but its weights never put into the model",
         find='train.restore_model(reloaded, saved["model"])', replace="pass"),
]
