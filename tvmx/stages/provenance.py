"""Which ONNX nodes each kernel computes, and its multiply-accumulates.

The importer names every binding after the ONNX node it converts (`n12__conv_3`: the node's index,
then its label), tvmx's rewrites keep the names (restore_names), and FuseOps keeps them inside the
fused functions; between FuseOps and FuseTIR, each kernel's nodes are read back from its bindings'
names and its MACs from the unscheduled TIR of its ops. With the offload report's accelerator
kernels, the result is 02-relax/kernels.json, which `tvmx run --profile` reads. What a rewrite
added (a layout transform, a lookup's index arithmetic) stays anonymous: a kernel of only that
names no node.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import onnx

FORMAT = 1
_HINT = re.compile(r"^n(\d+)__")
ADDED = "added__"  # the prefix of what tvmx's rewrites added (mark_added)


def node_label(index: int, node: onnx.NodeProto) -> str:
    """A node's name, or `Op#index` where it has none (the offload report's labels too)."""
    return node.name or f"{node.op_type}#{index}"


def labels_of(var_names: list[str], labels: list[str]) -> list[str]:
    """The labels (by node index) of the nodes these binding names were named after, in graph order."""
    indices = sorted({i for i in map(node_index, var_names) if i is not None and i < len(labels)})
    return [labels[i] for i in indices]


def binding_hint(index: int, label: str) -> str:
    return f"n{index}__" + re.sub(r"\W", "_", label)[:40]


def node_index(var_name: str) -> int | None:
    match = _HINT.match(var_name)
    return int(match.group(1)) if match else None


@contextlib.contextmanager
def named_bindings(model: onnx.ModelProto) -> Iterator[dict[Any, str]]:
    """While TVM's importer runs on `model` (labelled: every node named), each node's results are
    bound to a variable named after the node (binding_hint). Converters that bind their results
    themselves give them anonymous names: the yielded map records which node each such result
    variable belongs to, for name_bindings. Nodes inside subgraphs stay anonymous."""
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import ONNXGraphImporter

    index_of: dict[str, int] = {}
    for i, node in enumerate(model.graph.node):
        index_of.setdefault(node.name, i)
    owner: dict[Any, str] = {}
    convert = ONNXGraphImporter._convert_operator

    def named(self: Any, op_name: str, inputs: Any, attrs: dict[str, Any], opset: int) -> Any:
        index = index_of.get(attrs.get("tvm_custom", {}).get("name", ""))  # (converters may pop it)
        sym = convert(self, op_name, inputs, attrs, opset)
        if index is None:
            return sym
        hint = binding_hint(index, model.graph.node[index].name)

        def bind(expr: Any) -> Any:
            if isinstance(expr, (relax.Call, relax.TupleGetItem)):
                expr = self.bb.emit(expr, name_hint=hint)
            if isinstance(expr, relax.Var):
                owner.setdefault(expr, hint)  # (an Identity's result is its input's, owned already)
            return expr

        return relax.Tuple([bind(f) for f in sym.fields]) if isinstance(sym, relax.Tuple) else bind(sym)

    ONNXGraphImporter._convert_operator = named
    try:
        yield owner
    finally:
        ONNXGraphImporter._convert_operator = convert


def labelled(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose unnamed nodes are named by their label, for named_bindings."""
    if all(node.name for node in model.graph.node):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for i, node in enumerate(copy.graph.node):
        node.name = node_label(i, node)
    return copy


def name_bindings(mod: Any, owner: dict[Any, str] | None = None) -> Any:
    """Names every binding of `main` after its node, each name once (`n3__conv_1`: a second binding
    of node 3): a node's result variables by `owner` (named_bindings; without it, the bindings named
    after a node already), the anonymous results it uses (bound just before it by its converter or
    a TVM pass that decomposed it) after it, a tuple's element after its tuple. What tvmx's
    rewrites added (mark_added) stays anonymous. Bindings no output uses are dropped."""
    from tvm import relax

    def node_of(var: Any) -> str | None:
        if owner is not None:
            return owner.get(var)
        return var.name if node_index(var.name) is not None else None

    names: dict[Any, str] = {}
    for block in mod["main"].body.blocks:
        pending: dict[Any, Any] = {}  # anonymous bindings not yet used by a named one -> their values
        for b in block.bindings:
            if isinstance(b.value, relax.TupleGetItem) and b.value.tuple_value in names:
                names[b.var] = names[b.value.tuple_value]
            elif (name := node_of(b.var)) is not None:
                names[b.var] = name
                used = set(relax.analysis.free_vars(b.value))
                for var in reversed(list(pending)):  # the ones it uses, also through each other
                    if var in used:
                        names[var] = name
                        used |= set(relax.analysis.free_vars(pending.pop(var)))
            elif not b.var.name.startswith(ADDED):
                pending[b.var] = b.value
    return relax.transform.DeadCodeElimination(["main"])(_renamed(mod, _each_once(names)))


def mark_added(mod: Any) -> Any:
    """`mod` with the anonymous bindings of `main` (what tvmx's rewrites added: layout transforms,
    accelerator kernels, a lookup's requantization) named `added__...`, so that name_bindings,
    after TVM's passes, does not take them for a node's decomposition."""
    return _renamed(mod, {b.var: ADDED + b.var.name for b in _bindings(mod["main"])
                          if node_index(b.var.name) is None and not b.var.name.startswith(ADDED)})


def _each_once(names: dict[Any, str]) -> dict[Any, str]:
    seen: dict[str, int] = {}
    out = {}
    for var, name in names.items():
        seen[name] = seen.get(name, -1) + 1
        out[var] = f"{name}_{seen[name]}" if seen[name] else name
    return out


def _bindings(func: Any) -> list[Any]:
    return [b for block in func.body.blocks for b in block.bindings]


def _computed(func: Any) -> dict[Any, str]:
    """What each binding of `func` computes (_key) -> the binding's name."""
    named: dict[Any, str] = {}
    for b in _bindings(func):
        named.setdefault(_key(b.value, {}), b.var.name)
    return named


def _evaluate(named: dict[Any, str], bindings: list[Any], env: dict[Any, Any]) -> list[str]:
    """Binds each variable of `bindings` in `env` to the name of the binding in `named` that
    computes the same (else to what it computes). Returns the names found."""
    found = []
    for b in bindings:
        key = _key(b.value, env)
        name = named.get(key)
        env[b.var] = ("var", name) if name is not None else key
        if name is not None:
            found.append(name)
    return found


def _call_results(mod: Any, named: dict[Any, str], kept: Any) -> Iterator[tuple[Any, Any, list[str]]]:
    """(binding, what it computes, the names found inside) for each binding of main, a call of a
    Relax function (a fused group) evaluated through the function's body on the call's arguments;
    `kept(var)`: a variable that stands for itself (named after its node already)."""
    from tvm import relax

    env: dict[Any, Any] = {}
    for b in _bindings(mod["main"]):
        call = b.value
        if kept(b.var):
            env[b.var] = ("var", b.var.name)
            yield b, env[b.var], []
        elif isinstance(call, relax.Call) and isinstance(call.op, relax.GlobalVar) and isinstance(
                mod[call.op], relax.Function):
            func = mod[call.op]
            inner = dict(zip(func.params, (_key(a, env) for a in call.args), strict=True))
            found = _evaluate(named, _bindings(func), inner)
            env[b.var] = _key(func.body.body, inner)
            yield b, env[b.var], found
        else:
            found = _evaluate(named, [b], env)
            yield b, env[b.var], found


def restore_names(before: Any, mod: Any) -> Any:
    """After a rewrite of `main` (`before`: the old one), a new anonymous binding that computes
    what a named one did (re-emitted, or the result of a fused group) takes its name."""
    named = {k: n for k, n in _computed(before).items() if node_index(n) is not None}
    present = {b.var.name for b in _bindings(mod["main"])}

    def kept(var: Any) -> bool:
        return node_index(var.name) is not None

    names: dict[Any, str] = {}
    for b, key, _ in _call_results(mod, named, kept):
        if key[0] == "var" and not kept(b.var) and key[1] not in present:
            names[b.var] = key[1]
            present.add(key[1])
    return _renamed(mod, names) if names else mod


def _renamed(mod: Any, names: dict[Any, str]) -> Any:
    """`mod` with main's binding variables in `names` renamed."""
    from tvm import relax

    @relax.expr_functor.mutator
    class Rename(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            name = names.get(binding.var)
            if name is None or name == binding.var.name:
                super().visit_var_binding_(binding)
                return
            value = self.visit_expr(binding.value)
            cls = relax.DataflowVar if isinstance(binding.var, relax.DataflowVar) else relax.Var
            new = cls(name, binding.var.ty)
            self.set_var_remap(binding.var, new)
            self.builder_.emit_normalized(relax.VarBinding(new, value))

    mutator = Rename(mod)
    main = mutator.visit_expr(mod["main"])
    out = mutator.builder_.get()
    out["main"] = main
    return out


@dataclass
class KernelWork:
    """What one kernel computes over all its calls: ONNX node labels and multiply-accumulates."""

    nodes: list[str] = field(default_factory=list)
    macs: int = 0

    def add(self, labels: list[str], macs: int) -> None:
        for label in labels:
            if label not in self.nodes:
                self.nodes.append(label)
        self.macs += macs


class Provenance:
    """Two passes around FuseOps. Before it, every binding of `main` is named after its node, each
    name once, and remembered by what it computes (op, callee, argument names). FuseOps keeps the
    names inside a fused function, but binds each group's result in `main` to a new anonymous
    variable and calls one function for all the groups that compute alike; so after it, each call's
    bindings are found again by evaluating the callee's body on the call's arguments. `work` then
    maps each kernel (a PrimFunc name after FuseTIR) to its nodes and MACs."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels  # the ONNX graph's node labels by index
        self.named: dict[Any, str] = {}  # what a binding computed before FuseOps -> its name
        self.work: dict[str, KernelWork] = {}

    def name_pass(self) -> Any:
        import tvm

        def name(mod: Any, _ctx: Any) -> Any:
            mod = name_bindings(mod)
            self.named = _computed(mod["main"])
            return mod

        return tvm.ir.transform.module_pass(name, opt_level=0, name="tvmx.NameBindingsAfterNodes")

    def record_pass(self) -> Any:
        import tvm

        def record(mod: Any, _ctx: Any) -> Any:
            self.work = self.kernel_work(mod)
            return mod

        return tvm.ir.transform.module_pass(record, opt_level=0, name="tvmx.RecordKernelWork")

    def to_json(self) -> dict[str, Any]:
        """02-relax/kernels.json: {"format": 1, "kernels": {kernel: {"nodes": [label...], "macs": N}}}."""
        return {"format": FORMAT, "kernels": {k: asdict(w) for k, w in sorted(self.work.items())}}

    def labels_of(self, var_names: list[str]) -> list[str]:
        return labels_of(var_names, self.labels)

    def kernel_work(self, mod: Any) -> dict[str, KernelWork]:
        import tvm
        from tvm import relax

        call_tir = tvm.ir.Op.get("relax.call_tir")

        def macs_of(call: Any) -> int:
            if isinstance(call, relax.Call) and call.op.same_as(call_tir):
                callee = mod[call.args[0]]
                return tir_macs(callee) if isinstance(callee, tvm.tirx.PrimFunc) else 0
            return 0

        work: dict[str, KernelWork] = {}
        for b, key, found in _call_results(mod, self.named, lambda _var: False):
            call = b.value
            if not isinstance(call, relax.Call):
                continue
            if isinstance(call.op, relax.GlobalVar) and isinstance(mod[call.op], relax.Function):
                names = found + ([key[1]] if key[0] == "var" else [])
                inner = _bindings(mod[call.op])
                work.setdefault(call.op.name_hint, KernelWork()).add(
                    self.labels_of(names), sum(macs_of(x.value) for x in inner))
            elif call.op.same_as(call_tir):
                work.setdefault(call.args[0].name_hint, KernelWork()).add(self.labels_of(found), macs_of(call))
        return work


_INTERNED: dict[Any, int] = {}


def _interned(key: tuple[Any, ...]) -> tuple[str, int]:
    """One small key per distinct expression: a key made of its arguments' keys would be a tree as
    large as the graph below it (DenseNet's chained concatenations: exponential to hash)."""
    return ("key", _INTERNED.setdefault(key, len(_INTERNED)))


def _key(expr: Any, env: dict[Any, Any]) -> Any:
    """What an expression computes, as a hashable key: variables through `env` (else by name),
    constants by identity (FuseOps passes the same objects on), calls by op and arguments."""
    import tvm
    from tvm import relax

    if isinstance(expr, relax.Var):
        return env.get(expr, ("var", expr.name))
    if isinstance(expr, tvm.ir.Constant):
        return ("const", hash(expr))
    if isinstance(expr, relax.Tuple):
        return _interned(("tuple", *(_key(f, env) for f in expr.fields)))
    if isinstance(expr, relax.TupleGetItem):
        return _interned(("item", _key(expr.tuple_value, env), int(expr.index)))
    if isinstance(expr, relax.Call):
        op = expr.op.name_hint if isinstance(expr.op, relax.GlobalVar) else str(getattr(expr.op, "name", expr.op))
        return _interned(("call", op, *(_key(a, env) for a in expr.args), str(expr.attrs) if expr.attrs else ""))
    return ("expr", str(expr))


def tir_macs(func: Any) -> int:
    """Multiply-accumulates of an unscheduled PrimFunc: every store `C[i] = C[i] + a * b` (casts
    allowed), times the trip count of the loops around it."""
    from tvm import s_tir, tirx

    def is_mac(store: Any) -> bool:
        value = store.value
        if not isinstance(value, tirx.Add):
            return False
        for acc, term in ((value.a, value.b), (value.b, value.a)):
            while isinstance(term, tirx.Cast):
                term = term.value
            # (a load is a tvm.ir.TensorLoad in 0.27, its buffer in `source`)
            loaded = getattr(acc, "source", getattr(acc, "buffer", None))
            if loaded is not None and loaded.same_as(store.buffer) and isinstance(term, tirx.Mul):
                return True
        return False

    def count(stmt: Any, trips: int) -> int:
        if isinstance(stmt, tirx.For):
            extent = stmt.extent
            return count(stmt.body, trips * int(extent.value)) if hasattr(extent, "value") else 0
        if isinstance(stmt, tirx.BufferStore):
            return trips if is_mac(stmt) else 0
        if isinstance(stmt, tirx.SeqStmt):
            return sum(count(s, trips) for s in stmt.seq)
        if isinstance(stmt, s_tir.SBlockRealize):
            return count(stmt.block, trips)
        if isinstance(stmt, s_tir.SBlock):  # its init only zeroes the accumulator
            return count(stmt.body, trips)
        return sum(count(getattr(stmt, a), trips) for a in ("body", "then_case", "else_case")
                   if getattr(stmt, a, None) is not None)

    return count(func.body, 1)
