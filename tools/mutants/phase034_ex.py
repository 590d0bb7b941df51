"""Planted mistakes for the exercise parts of phases 03-04 that no other mutant file covers
(see tools/mutate.py): each a realistic one-line slip inside a marked part's body, which a
self-check of the lesson must catch."""
MUTANTS = [
    # 03.10 model save/load: the snapshot part
    dict(lesson="03.10", why="checkpoint records the epoch before the one just finished (off by one)",
         find='"epoch": epoch,', replace='"epoch": epoch - 1,'),
    # 04.04 activation functions: the overflow-safe sigmoid part
    dict(lesson="04.04", why="stable sigmoid uses 1 / (1 + e^-|x|) on both sides (wrong for x < 0)",
         find="torch.where(x >= 0, 1 / (1 + z), z / (1 + z))",
         replace="torch.where(x >= 0, 1 / (1 + z), 1 / (1 + z))"),
]
