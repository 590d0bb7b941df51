"""Planted mistakes for phase 01 (see tools/mutate.py): each a realistic one-line
slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
]
