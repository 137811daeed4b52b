"""Rendering `tfsbench check`'s outcome: plain text (terminal), Markdown (CI job summaries),
JUnit XML (one test case per check)."""

from __future__ import annotations

from tfsbench.reports.check_evaluate import Check, CheckOutcome


def _verdict(check: Check) -> str:
    if not check.passed:
        return "FAIL"
    return "~" if check.mark == "~" else "pass"


def render_text(outcome: CheckOutcome) -> str:
    rows = [(_verdict(c), c.config, c.name, c.measured, c.detail) for c in outcome.checks]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    lines = [
        f"{v:<{widths[0]}}  {cfg:<{widths[1]}}  {name:<{widths[2]}}  {measured}" + (f"  [{detail}]" if detail else "")
        for v, cfg, name, measured, detail in rows
    ]
    lines.extend(f"note: {n}" for n in outcome.notes)
    failed = len(outcome.failed)
    lines.append(
        f"check: {'FAILED' if failed else 'passed'}: {failed} of {len(outcome.checks)} checks failed"
        if failed
        else f"check: passed: all {len(outcome.checks)} checks passed"
    )
    return "\n".join(lines)


def render_markdown(outcome: CheckOutcome) -> str:
    """A Markdown summary for CI job summaries ($GITHUB_STEP_SUMMARY)."""
    failed = len(outcome.failed)
    head = (
        f"## tfsbench check: :x: {failed} of {len(outcome.checks)} checks failed"
        if failed
        else f"## tfsbench check: :white_check_mark: all {len(outcome.checks)} checks passed"
    )
    lines = [head, "", "| result | configuration | check | measured | detail |", "|---|---|---|---|---|"]
    icon = {"FAIL": ":x: fail", "~": "~ noise", "pass": ":white_check_mark: pass"}
    for c in outcome.checks:
        cells = [icon[_verdict(c)], c.config, c.name, c.measured, c.detail]
        lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    if outcome.max_regression is not None:
        lines += [
            "",
            f"Baseline: a regression fails only when worse by more than {outcome.max_regression:.0%} and "
            "significant (95% bootstrap CI of the change excludes zero); `~` marks differences within noise.",
        ]
    if outcome.notes:
        lines += [""] + [f"- {n}" for n in outcome.notes]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_junit(outcome: CheckOutcome) -> str:
    """JUnit XML: one <testcase> per threshold and configuration (and per baseline metric)."""
    import xml.etree.ElementTree as ET

    failures = len(outcome.failed)
    root = ET.Element("testsuites", name="tfsbench check", tests=str(len(outcome.checks)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name="tfsbench check",
        tests=str(len(outcome.checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
    )
    for c in outcome.checks:
        case = ET.SubElement(suite, "testcase", classname=f"tfsbench.{c.config}", name=c.name, time="0")
        if not c.passed:
            fail = ET.SubElement(case, "failure", message=c.detail or c.measured, type=c.kind)
            fail.text = f"{c.measured}\n{c.detail}".strip()
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c.measured} {c.detail}".strip()
    if outcome.notes:
        notes = ET.SubElement(suite, "system-out")
        notes.text = "\n".join(outcome.notes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
