"""accel_glue.c for Gemmini: C wrappers with TVM-friendly signatures (int64 sizes, void* buffers)
around gemmini.h's tiled helpers, each building the header's tiling struct from the arguments the
tune stage appends (gemmini_tiling's matmul_call_args and conv_call_args name them)."""

from __future__ import annotations

from tvmx.accelerators.gemmini_tiling import NO_CONV, NO_MATMUL, conv_call_args, matmul_call_args
from tvmx.offload.kernels import c_wrapper, glue_preamble


def glue_c(header: str, functions: dict[str, str]) -> str:
    lines = glue_preamble(header)
    if "matmul" in functions:
        fn = functions["matmul"]
        mm = list(matmul_call_args(NO_MATMUL))  # the tiling's fields, as the tune stage appends them
        lines += c_wrapper(
            fn, "int64_t M, int64_t N, int64_t K, float acc_scale, int32_t act, void *A, void *B, void *D, void *C, "
            + ", ".join(f"int64_t {a}" for a in mm),
            ["  /* the tiling the compiler chose (03-tune/schedules.json): DIM x DIM blocks, dataflow, lookahead */",
             f"  const gemmini_tiling t = {{{', '.join(f'(size_t){a}' for a in mm)}}};"],
            [f"  {fn}((size_t)M, (size_t)N, (size_t)K, A, B, D, C, (size_t)K, (size_t)N, 0, (size_t)N, 1.0f, 1.0f,",
             "      acc_scale, act, 0, t);"])
    if "conv2d" in functions:
        fn = functions["conv2d"]
        cv = list(conv_call_args(NO_CONV, NO_MATMUL))  # conv tiling fields, then mm_<matmul tiling fields>
        conv_fields = [a for a in cv if not a.startswith("mm_")]  # by name: C's field order may differ
        mm_fields = [a for a in cv if a.startswith("mm_")]
        lines += c_wrapper(
            fn, "int64_t batch, int64_t in_h, int64_t in_w, int64_t groups, int64_t in_c, int64_t out_c, "
            "int64_t out_h, int64_t out_w, int64_t stride, int64_t pad, int64_t kh, int64_t kw, int64_t pool_size, "
            "int64_t pool_stride, int64_t pool_pad, float acc_scale, int32_t act, void *input, void *weights, "
            "void *bias, void *output, " + ", ".join(f"int64_t {a}" for a in cv),
            ["  /* the tiling the compiler chose (03-tune/schedules.json): implicit GEMM (the accelerator reads",
             "     the NHWC input itself, no im2col) with th x tw output tiles; or th = 0 and, for a 1x1 conv that",
             "     runs as a matmul, the matmul's tiling; none at all (every field 0): the header's own choice */",
             f"  const gemmini_conv_tiling t = {{{', '.join(f'.{a} = (size_t){a}' for a in conv_fields)},",
             f"                                  .matmul = {{{', '.join(f'.{a[3:]} = (size_t){a}' for a in mm_fields)}"
             "}};"],
            [f"  {fn}((size_t)batch, (size_t)in_h, (size_t)in_w, (size_t)groups, (size_t)in_c, (size_t)out_c,",
             "      (size_t)out_h, (size_t)out_w, (size_t)stride, (size_t)pad, (size_t)kh, (size_t)kw,",
             "      (size_t)pool_size, (size_t)pool_stride, (size_t)pool_pad, input, weights, bias, output, acc_scale,",
             f"      act, ({conv_fields[0]} || {mm_fields[0]}) ? &t : NULL);"])
    if "add" in functions:
        fn = functions["add"]
        lines += c_wrapper(fn, "int64_t n, float a_scale, float b_scale, float c_scale, int32_t act, void *A, void *B, "
                           "void *C", [], [f"  {fn}((size_t)n, A, B, C, a_scale, b_scale, c_scale, act);"])
    if "add3" in functions:
        fn = functions["add3"]
        lines += c_wrapper(fn, "int64_t n, float a_scale, float b_scale, float d_scale, float c_scale, int32_t act, "
                           "void *A, void *B, void *D, void *C", [],
                           [f"  {fn}((size_t)n, A, B, D, C, a_scale, b_scale, d_scale, c_scale, act);"])
    return "\n".join(lines)
