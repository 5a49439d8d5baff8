"""tiled_resadd_auto and tiled_resadd3_auto on the Spike model against numpy: the mvin roundings,
the accumulate flag, mvout's requantization and ReLU; short last rows and more rows than the
accumulator holds."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import Rig, c_array
from .test_instructions import rne_sat
from .test_tiled import cfloat

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

# (name, elements, input scales (two: tiled_resadd_auto, three: tiled_resadd3_auto), c_scale, act)
CASES = [
    ("one", 1, (0.5, 0.5), 1.0, 0),
    ("short_row", 37, (3.0, -2.0), 0.25, 0),
    ("fixed_point_relu", 5000, (0.7 * 2**14, 1.3 * 2**14), 2.0**-14, 1),
    ("wraps_accumulator", 40_000, (0.9 * 2**12, 0.45 * 2**12), 2.0**-12, 0),
    ("three_short_row", 37, (3.0, -2.0, 1.5), 0.25, 0),
    ("three_relu", 5000, (0.7 * 2**14, 1.3 * 2**14, -0.4 * 2**14), 2.0**-14, 1),
    ("three_wraps_accumulator", 40_000, (0.9 * 2**12, 0.45 * 2**12, 0.3 * 2**12), 2.0**-12, 0),
]


def test_resadd_matches_numpy(rig: Rig) -> None:
    rng = np.random.default_rng(11 + rig.dim)
    data, body, want = [], [], {}
    for i, (name, n, scales, sc, act) in enumerate(CASES):
        inputs = [rng.integers(-128, 128, n) for _ in scales]
        names = [f"{'ABD'[k]}{i}" for k in range(len(scales))]
        data += [c_array(v, x, "int8_t") for v, x in zip(names, inputs, strict=True)]
        body.append(f'__attribute__((section(".tvmx_outputs"), aligned(64))) int8_t out_{name}[{n}];')
        acc = sum(rne_sat(x, s, -(2**31), 2**31 - 1) for x, s in zip(inputs, scales, strict=True))
        ref = rne_sat(acc, sc, -128, 127)
        want[name] = np.maximum(ref, 0) if act else ref
        function = "tiled_resadd_auto" if len(scales) == 2 else "tiled_resadd3_auto"
        body.append(f"static void run_{i}(void) {{ {function}({n}, {', '.join(names)}, out_{name}, "
                    f"{', '.join(cfloat(s) for s in scales)}, {cfloat(sc)}, {act}); }}")
    calls = " ".join(f"run_{i}();" for i in range(len(CASES)))
    source = ('#include <stddef.h>\n#include <stdint.h>\n#include "gemmini.h"\n#include "case_data.h"\n'
              + "\n".join(body) + f"\nint main(void) {{ {calls} return 0; }}\n")
    run = rig.run_source("resadd", source, "".join(data))
    for name, ref in want.items():
        got = run.array(f"out_{name}", np.int8, ref.shape).astype(np.int64)
        bad = np.flatnonzero(got != ref)
        assert bad.size == 0, f"{name}: {bad.size}/{ref.size} differ; first at {bad[0]}: {got[bad[0]]} vs {ref[bad[0]]}"
    assert run.stats["macs"] == 0  # moves and requantization only: nothing ran on the array
