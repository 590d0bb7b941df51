"""Planted mistakes for phase 07's exercise parts in lessons 06-08 and the two capstones that
the other mutant files (phase07g.py, phase07h.py) do not cover (see tools/mutate.py): each a
realistic one-line slip inside a marked '# EXERCISE' body, which a self-check must catch."""
MUTANTS = [
    # capstone 1 - exact match (part exact_match)
    dict(lesson="07.capstone1", why="exact match returns the count of matches, not the fraction",
         find="return sum(h == r for h, r in zip(hyps, refs)) / len(refs)",
         replace="return sum(h == r for h, r in zip(hyps, refs))"),
]
