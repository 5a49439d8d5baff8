"""`tvmx verify --junit FILE`: the results as JUnit XML, the format CI systems (Jenkins, GitLab,
GitHub Actions' reporters) collect. One <testsuite> per verify call; one <testcase> per model
output (classname `<model>.<target>`, name the output's); a mismatch is a <failure> whose message
carries the error figures, and a model that could not be verified at all (it does not compile, the
guest traps) is one <error> case named `verify`."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tvmx.verify.compare import Comparison, OutputDiff


@dataclass(frozen=True)
class ModelResult:
    """One model's verify: its comparison, or the error that stopped it."""

    model: str  # the model file's stem
    target: str
    seconds: float  # compile (or reuse), run and reference together
    comparison: Comparison | None = None
    error: str | None = None  # message (and hint) of the TvmxError
    error_type: str = ""
    details: str = ""  # for the log: the summary line, instret and cycles


def diff_message(diff: OutputDiff, comparison: Comparison) -> str:
    """The figures of one output, as the failure message."""
    line = (f"{diff.mismatched} of {diff.total} elements mismatched, max abs err {diff.max_abs:.6g}, "
            f"max rel err {diff.max_rel:.6g}")
    if diff.max_lsb is not None:
        line += (f", max {diff.max_lsb} LSB, {diff.lsb_elements} elements differ "
                 f"(allowed: {comparison.max_lsb} LSB on {comparison.max_lsb_fraction:.1%})")
    else:
        line += f" (rtol={comparison.rtol:g} atol={comparison.atol:g})"
    if diff.nonfinite:
        line += f", {diff.nonfinite} NaN/inf where onnxruntime has another value"
    return line


def junit_xml(results: list[ModelResult], suite: str = "tvmx verify", timestamp: float | None = None) -> bytes:
    cases = []
    for r in results:
        classname = f"{r.model}.{r.target}"
        if r.comparison is None:
            case = ET.Element("testcase", classname=classname, name="verify", time=f"{r.seconds:.3f}")
            error = ET.SubElement(case, "error", message=r.error or "not verified", type=r.error_type)
            error.text = r.error or ""
            cases.append(case)
            continue
        outputs = r.comparison.outputs
        for diff in outputs:  # one run made every output: its time is shared among them
            case = ET.Element("testcase", classname=classname, name=diff.name,
                              time=f"{r.seconds / max(len(outputs), 1):.3f}")
            if diff.mismatched:
                failure = ET.SubElement(case, "failure", message=diff_message(diff, r.comparison), type="mismatch")
                failure.text = r.comparison.summary()
            out = ET.SubElement(case, "system-out")
            out.text = f"{diff_message(diff, r.comparison)}\n{r.details}\n"
            cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() if timestamp is None else timestamp))
    root = ET.Element("testsuites", name=suite, tests=str(len(cases)), failures=str(failures), errors=str(errors),
                      time=f"{sum(r.seconds for r in results):.3f}")
    suite_el = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                             errors=str(errors), skipped="0", time=f"{sum(r.seconds for r in results):.3f}",
                             timestamp=stamp, hostname=socket.gethostname())
    suite_el.extend(cases)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
