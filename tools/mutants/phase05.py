"""Planted mistakes for phase 05 (see tools/mutate.py): each a realistic one-line
slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 05.01 convolution by loops and by im2col
    dict(lesson="05.01", why="loops: the width offset uses the height dilation",
         find="[j * sw + kj * dw]", replace="[j * sw + kj * dh]"),
    dict(lesson="05.01", why="im2col conv: kernel height and width read in swapped order",
         find="O, Cg, KH, KW = w.shape\n    assert", replace="O, Cg, KW, KH = w.shape\n    assert"),
    dict(lesson="05.01", why="loops: output channel o assigned to group o % groups (interleaved)",
         find="g = o // per_group", replace="g = o % groups"),
    dict(lesson="05.01", why="im2col rows ordered (ki, kj, c) instead of F.unfold's (c, ki, kj)",
         find="cols = torch.stack(cols, dim=2)", replace="cols = torch.stack(cols, dim=1)"),
    dict(lesson="05.01", why="output size counts the padding once instead of on both sides",
         find="return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1",
         replace="return (n + padding - dilation * (k - 1) - 1) // stride + 1"),
]
