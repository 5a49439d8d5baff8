"""Table lookups as one TE loop each: the same values as the `take` they replace, and a `take`
whose index could leave the table is kept."""

from __future__ import annotations

from typing import Any

import numpy as np
from helpers import relax_main, run_relax

from tvmx.offload.lookups import lower_lookups


def test_an_int8_wrap_lookup_and_a_channel_lookup_keep_their_values() -> None:
    from tvm import relax

    rng = np.random.default_rng(0)
    table = rng.integers(-128, 128, 256).astype(np.int8)
    tables = rng.integers(-128, 128, 4 * 256).astype(np.int8)
    offsets = (np.arange(4, dtype=np.int32) * 256 + 128).reshape(1, 1, 4)
    x = rng.integers(-128, 128, (2, 5, 4)).astype(np.int8)

    def wrap(bb: Any, v: Any) -> Any:
        return relax.op.take(relax.const(table), v, axis=0, mode="wrap")

    def channel(bb: Any, v: Any) -> Any:
        index = bb.emit(relax.op.add(bb.emit(relax.op.astype(v, "int32")), relax.const(offsets)))
        return relax.op.take(relax.const(tables), index, axis=0, mode="clip")

    for make, name in ((wrap, "int8_lookup"), (channel, "channel_lookup")):
        mod = relax_main(make, x.shape)
        lowered = lower_lookups(mod)
        assert name in lowered.script() and "R.take(" not in lowered["main"].script()
        assert np.array_equal(run_relax(lowered, x), run_relax(mod, x))


def test_a_lookup_whose_index_could_leave_the_table_stays_a_take() -> None:
    from tvm import relax

    tables = np.zeros(4 * 256, np.int8)
    offsets = (np.arange(4, dtype=np.int32) * 256 + 129).reshape(1, 1, 4)  # x = 127 in channel 3: index 1024

    def channel(bb: Any, v: Any) -> Any:
        index = bb.emit(relax.op.add(bb.emit(relax.op.astype(v, "int32")), relax.const(offsets)))
        return relax.op.take(relax.const(tables), index, axis=0, mode="clip")

    assert "R.take(" in lower_lookups(relax_main(channel, (1, 2, 4)))["main"].script()


def test_a_lookup_of_a_lookup_is_one_lookup_of_the_same_values() -> None:
    """A sigmoid's table then a concat's requantization: one composed table, every int8 input; it
    takes the name of the sigmoid's lookup, the one named after an ONNX node."""
    from tvm import relax

    rng = np.random.default_rng(1)
    inner, outer = (rng.integers(-128, 128, 256).astype(np.int8) for _ in range(2))
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)

    def twice(bb: Any, v: Any) -> Any:
        first = bb.emit(relax.op.take(relax.const(inner), v, axis=0, mode="wrap"), name_hint="n7__sigmoid_1_Q")
        return relax.op.take(relax.const(outer), first, axis=0, mode="wrap")

    mod = relax_main(twice, x.shape)
    lowered = lower_lookups(mod)
    assert lowered["main"].script().count("int8_lookup") == 1
    assert [b.var.name for block in lowered["main"].body.blocks for b in block.bindings] == ["n7__sigmoid_1_Q"]
    assert np.array_equal(run_relax(lowered, x), run_relax(mod, x))
    assert np.array_equal(run_relax(mod, x), outer[inner[x.astype(np.int64) & 255].astype(np.int64) & 255])


def test_a_lookup_fuses_into_the_concatenation_that_reads_it() -> None:
    """Marked injective (each output element reads one input element), a lookup and the concat of
    its result with another tensor are one kernel after TVM's FuseOps, with the same values."""
    import tvm
    from tvm import relax

    table = np.random.default_rng(2).integers(-128, 128, 256).astype(np.int8)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16)

    def concat(bb: Any, v: Any) -> Any:
        looked_up = bb.emit(relax.op.take(relax.const(table), v, axis=0, mode="wrap"))
        return relax.op.concat([v, looked_up], axis=2)

    mod = relax_main(concat, x.shape)
    lowered = lower_lookups(mod)
    fused = tvm.ir.transform.Sequential([relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
                                         relax.transform.FuseOps(), relax.transform.FuseTIR()])(lowered)
    kernels = [gv.name_hint for gv, f in fused.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert kernels == ["fused_int8_lookup_concatenate"], kernels
    assert np.array_equal(run_relax(fused, x), np.concatenate([x, table[x.astype(np.int64) & 255]], axis=2))
