"""Analytic initialisation of the Table 3.8 network as a multi-scale gradient-energy extractor.

On 2 CPU cores the thesis network does not leave chance level within a session from a random
start (FACTS §3). Blur is a low-level property: it removes gradient energy at fine scales first.
So, without changing the architecture, a subset of channels in each conv block is set by hand:

- `D` channels: 8 oriented first-difference filters (each with + and - sign, so ReLU(BN(.))
  keeps both half-waves) applied to the current low-pass gray image `L`;
- `E` channels: energy maps, i.e. 4x4 box pooling of |D| (the +/- pair summed) from the previous
  block, carried down (pooled again) to the 7x7 output: E1 (finest) ... E5 (coarsest);
- `L` (gray) and `C` (RGB) channels: 4x4 box low-pass, the image pyramid the D filters read.

BatchNorm keeps D channels zero-centred (beta 0) and shifts E/L/C channels by +3 so ReLU passes
them. All other channels keep their random init, and every weight stays trainable: end-to-end
training starts from a detector that already works and refines it.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras

N_DIRECTIONS = 8
CARRY_BETA = 3.0


def _difference_filters() -> np.ndarray:
    """(8, 4, 4) first-difference kernels: pixel pairs across and inside the stride-2 blocks."""
    pairs = [
        [((1, 1), (1, 2)), ((2, 1), (2, 2))],  # horizontal, centre
        [((1, 1), (2, 1)), ((1, 2), (2, 2))],  # vertical, centre
        [((1, 1), (2, 2))],  # diagonal
        [((1, 2), (2, 1))],  # anti-diagonal
        [((1, 0), (1, 1)), ((2, 0), (2, 1))],  # horizontal, left
        [((1, 2), (1, 3)), ((2, 2), (2, 3))],  # horizontal, right
        [((0, 1), (1, 1)), ((0, 2), (1, 2))],  # vertical, top
        [((2, 1), (3, 1)), ((2, 2), (3, 2))],  # vertical, bottom
    ]
    out = np.zeros((N_DIRECTIONS, 4, 4), np.float32)
    for k, group in enumerate(pairs):
        for (a, b) in group:
            out[k][a] += 1.0 / len(group)
            out[k][b] -= 1.0 / len(group)
    return out


BOX = np.full((4, 4), 1 / 16, np.float32)


def apply_structured_init(model: keras.Model) -> dict[str, int]:
    """Set the structured channels of conv1..conv6 and their BatchNorms; returns the number of
    structured channels at the network's output (the rest of the 512 stay random)."""
    diffs = _difference_filters()
    layout: dict[str, list[int]] = {}  # previous block's channel roles
    for block in range(1, 7):
        conv = model.get_layer(f"conv{block}")
        bn = model.get_layer(f"bn{block}")
        kernel, bias = conv.get_weights()
        gamma, beta, mean, var = bn.get_weights()
        n_out = kernel.shape[-1]
        used = 0

        def take(n: int) -> list[int]:
            nonlocal used
            idx = list(range(used, used + n))
            used += n
            return idx

        new: dict[str, list[int]] = {"E": [], "D": [], "L": [], "C": []}
        if block == 1:
            gray_in, color_in = [0, 1, 2], [0, 1, 2]
            gray_weight = 1 / 3
        else:
            gray_in, color_in = layout["L"], layout["C"]
            gray_weight = 1.0
        # Structured outputs read only from their inputs: clear their columns first.
        n_struct = (len(layout.get("E", [])) + (N_DIRECTIONS if layout.get("D") else 0)
                    + (2 * N_DIRECTIONS if block < 6 else 0) + 1 + 3)
        assert n_struct <= n_out
        kernel[..., :n_struct] = 0.0
        bias[:n_struct] = 0.0
        for e in layout.get("E", []):  # carry earlier energy maps down the pyramid
            (o,) = take(1)
            kernel[:, :, e, o] = BOX
            new["E"].append(o)
        d_in = layout.get("D", [])
        for k in range(len(d_in) // 2):  # pool |D| of the previous block into a new energy map
            (o,) = take(1)
            kernel[:, :, d_in[2 * k], o] = BOX
            kernel[:, :, d_in[2 * k + 1], o] = BOX
            new["E"].append(o)
        if block < 6:  # differences of the current low-pass image, both signs
            for k in range(N_DIRECTIONS):
                plus, minus = take(2)
                for ch in gray_in:
                    kernel[:, :, ch, plus] = diffs[k] * gray_weight
                    kernel[:, :, ch, minus] = -diffs[k] * gray_weight
                new["D"] += [plus, minus]
        (o,) = take(1)
        for ch in gray_in:
            kernel[:, :, ch, o] = BOX * gray_weight
        new["L"].append(o)
        for ch in color_in:
            (o,) = take(1)
            kernel[:, :, ch, o] = BOX
            new["C"].append(o)
        assert used == n_struct, (used, n_struct)
        for role in ("E", "L", "C"):
            for o in new[role]:
                gamma[o], beta[o] = 1.0, CARRY_BETA
        for o in new["D"]:
            gamma[o], beta[o] = 1.0, 0.0
        conv.set_weights([kernel, bias])
        bn.set_weights([gamma, beta, mean, var])
        layout = new
    return {"structured_channels": used, "energy_maps": len(layout["E"])}
