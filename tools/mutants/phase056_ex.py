"""Planted mistakes for the exercise parts of phases 05 and 06 that no other mutant file
covers (see tools/mutate.py): each a realistic one-line slip inside a marked part, which a
self-check of the lesson must catch."""
MUTANTS = [
    # 05.10 squeeze-excitation
    dict(lesson="05.10", why="squeeze-excitation: the gate used without its sigmoid",
         find="return x * self.scale_activation(s)", replace="return x * s"),
]
