"""Gemmini's accel_glue.c (gemmini_glue): a wrapper per declared op, taking the call's arguments
in the order the kernels and the schedules pass them."""

from __future__ import annotations

from tvmx.accelerators.gemmini_glue import glue_c
from tvmx.toolchain.command import Executor

from .test_tuning_space import CONVS, FUNCTIONS, MATMULS, conv_sizes, gemmini


def test_glue_takes_the_arguments_the_schedules_append() -> None:
    """glue_c's wrappers end with exactly the parameters the schedules' args fill, in order."""
    g = gemmini("gemmini")
    glue = g.glue_c("gemmini.h", FUNCTIONS)
    for op, sizes, fn in (("matmul", MATMULS[0].sizes, "tvmx_tiled_matmul"),
                          ("conv2d", conv_sizes(CONVS[0]), "tvmx_tiled_conv_grouped"),
                          ("conv2d", conv_sizes(CONVS[-1]), "tvmx_tiled_conv_grouped")):
        params = glue.split(f"int32_t {fn}(")[1].split(")")[0].replace("\n", " ").split(",")
        names = [p.split()[-1] for p in params]
        args = g.schedule_kernel(op, sizes, "k", Executor()).detail["tiling"]
        assert names[-len(args):] == list(args), (op, names)


def test_only_the_declared_ops_get_a_wrapper() -> None:
    glue = glue_c("my.h", {"add3": "resadd3"})
    assert '#include "my.h"' in glue and "int32_t tvmx_resadd3(" in glue and "  resadd3((size_t)n," in glue
    assert glue.count("int32_t tvmx_") == 1 and "gemmini_tiling" not in glue
