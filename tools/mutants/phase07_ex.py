"""Planted mistakes for phase 07's exercise parts (lessons 01-05 and 09-13) that no other
mutant file covers (see tools/mutate.py): each a realistic one-line slip inside a marked
'# EXERCISE' body, which a self-check of the lesson must catch."""
MUTANTS = [
    # 04 - the encoder layer's forward (part encoder_layer)
    dict(lesson="07.04", why="the feed-forward sub-layer normalised with norm1 (the attention's) instead of norm2",
         find="self.norm1, self.norm_first)\n        return sublayer(x, self._feed_forward, self.norm2,",
         replace="self.norm1, self.norm_first)\n        return sublayer(x, self._feed_forward, self.norm1,"),
    dict(lesson="07.04", why="the mask not passed to the self-attention: padded keys attended",
         find="x = sublayer(x, lambda h: self._self_attention(h, mask), self.norm1,",
         replace="x = sublayer(x, lambda h: self._self_attention(h, None), self.norm1,"),
]
