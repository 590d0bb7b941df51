"""Planted mistakes for the verdict added to 03.06 (issue 12; see tools/mutate.py)."""
MUTANTS = [
    dict(lesson="03.06", why="steps to the threshold counted from 1 (the start counted as a step)",
         find="return next((t for t, loss in enumerate(losses) if loss < threshold), None)",
         replace="return next((t for t, loss in enumerate(losses, 1) if loss < threshold), None)"),
    dict(lesson="03.06", why="'ends lower' read from each run's best loss instead of where it stops",
         find="verdict = {name: (steps_to(c, VERDICT_LOSS), c[VALLEY_STEPS], c[-1])",
         replace="verdict = {name: (steps_to(c, VERDICT_LOSS), min(c[:VALLEY_STEPS + 1]), c[-1])"),
    dict(lesson="03.06", why="the verdict's Adam run given the SGD learning rate",
         find="for name, mine, _ in configs(lr_sgd, lr_adam):",
         replace="for name, mine, _ in configs(lr_sgd, lr_sgd):"),
]
