"""Planted mistakes for phase 06, lessons 01 and 04-06 (see tools/mutate.py): each a realistic
one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 06.01 - the Elman cell, the unroller, the stack
    dict(lesson="06.01", why="b_hh left out of the cell (one bias seems enough)",
         find='+ h @ p["w_hh"].T + p["b_hh"])', replace='+ h @ p["w_hh"].T)'),
    dict(lesson="06.01", why="W_hh not transposed (square, so no shape error)",
         find='h @ p["w_hh"].T', replace='h @ p["w_hh"]'),
    dict(lesson="06.01", why="every layer of the stack starts from layer 0's initial state",
         find="run_layer(cell, x, layer_state(state, k), p)",
         replace="run_layer(cell, x, layer_state(state, 0), p)"),
    dict(lesson="06.01", why="ReLU where nn.RNN's default nonlinearity is tanh",
         find='return torch.tanh(x_t @ p["w_ih"].T', replace='return torch.relu(x_t @ p["w_ih"].T'),
    dict(lesson="06.01", why="batch-first input unrolled over dim 0 (the batch) instead of time",
         find="for t in range(x.shape[1]):                 # time is dim 1",
         replace="for t in range(x.shape[0]):                 # time is dim 1"),
    # 06.04 - LSTM
    dict(lesson="06.04", why="gates read in TensorFlow 1's order (i, g, f, o) instead of PyTorch's",
         find="i, f, g, o = z.chunk(4, dim=1)", replace="i, g, f, o = z.chunk(4, dim=1)"),
    dict(lesson="06.04", why="forget gate left out: the cell state only accumulates",
         find="c = f * c + i * g", replace="c = c + i * g"),
    dict(lesson="06.04", why="tanh of the cell state forgotten in the output",
         find="return o * torch.tanh(c), c", replace="return o * c, c"),
    dict(lesson="06.04", why="state unpacked as (c, h): PyTorch passes (h0, c0)",
         find="    h, c = state\n", replace="    c, h = state\n"),
    dict(lesson="06.04", why="candidate g squashed by sigmoid instead of tanh",
         find="torch.tanh(g), torch.sigmoid(o)", replace="torch.sigmoid(g), torch.sigmoid(o)"),
    dict(lesson="06.04", edit="06.01", why="hidden() returns c for an LSTM: the outputs are the "
         "cell states", find="return state[0] if isinstance(state, tuple) else state",
         replace="return state[1] if isinstance(state, tuple) else state"),
    # 06.05 - GRU
    dict(lesson="06.05", why="update gate the other way round: h_t = z * n + (1 - z) * h",
         find="r, z, n = gru_gates(x_t, h, p)\n    return (1 - z) * n + z * h",
         replace="r, z, n = gru_gates(x_t, h, p)\n    return z * n + (1 - z) * h"),
    dict(lesson="06.05", why="reset gate forgotten in the candidate",
         find="n = torch.tanh(x_n + r * h_n)", replace="n = torch.tanh(x_n + h_n)"),
    dict(lesson="06.05", why="r and z blocks read in swapped order (z, r, n)",
         find="x_r, x_z, x_n = gx.chunk(3, dim=1)", replace="x_z, x_r, x_n = gx.chunk(3, dim=1)"),
    dict(lesson="06.05", why="reset gate applied to W_hn h but not to b_hn",
         find="n = torch.tanh(x_n + r * h_n)",
         replace='n = torch.tanh(x_n + r * (h_n - p["b_hh"][2 * h.shape[1]:]) '
                 '+ p["b_hh"][2 * h.shape[1]:])'),
    dict(lesson="06.05", why="parameter count: a layer above the first reads H inputs even "
         "when bidirectional", find="n_in = input_size if k == 0 else hidden_size * directions\n"
         "        total", replace="n_in = input_size if k == 0 else hidden_size\n        total"),
    dict(lesson="06.05", why="parameter count: one bias vector per gate block instead of two",
         find="+ 2 * gates * hidden_size)", replace="+ gates * hidden_size)"),
    dict(lesson="06.05", edit="06.01", why="b_ih and b_hh swapped while copying weights: "
         "invisible to RNN and LSTM, which only add them; the GRU's r multiplies b_hn alone",
         find='("b_ih", "bias_ih"), ("b_hh", "bias_hh")',
         replace='("b_ih", "bias_hh"), ("b_hh", "bias_ih")'),
    # 06.06 - bidirectional and stacked
    dict(lesson="06.06", why="the reverse direction reads the input forwards",
         find="seq = x if d == 0 else x.flip(1)", replace="seq = x"),
    dict(lesson="06.06", why="the reverse direction's outputs not flipped back into time order",
         find="outs.append(out if d == 0 else out.flip(1))", replace="outs.append(out)"),
    dict(lesson="06.06", why="time-reversal flips dim 0 (the batch) instead of time",
         find="else x.flip(1)", replace="else x.flip(0)"),
    dict(lesson="06.06", why="initial state indexed by layer only: both directions of a layer "
         "start from one slice of h0", find="basics.layer_state(state, j)",
         replace="basics.layer_state(state, k)"),
    dict(lesson="06.06", why="labels written at the later token's position: the 'future' is "
         "the past, and a forward-only model beats the bound",
         find="labels[:, :-AHEAD] = (tokens[:, AHEAD:]",
         replace="labels[:, AHEAD:] = (tokens[:, AHEAD:]"),
]
