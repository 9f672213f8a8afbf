#!/usr/bin/env python3
"""milvus_suite_report.py - turn the junit xml of scripts/milvus_suite.sh into the
compatibility report: docs/compatibility.md (for people) and docs/compatibility.json
(machine-readable; the next run's "before").

The report lists, per test file of Milvus's milvus_client suite, passed / failed /
errors / skipped and the pass rate (passed over tests run, skips excluded), with the
previous run's numbers beside them when --before names an earlier compatibility.json,
and every failure grouped by cause. Causes come from the properties that
scripts/milvus_suite_plugin.py records (the checked API, the expected and the actual
answer) and from the failure's first line, by the heuristics in `classify`. The output
depends only on the inputs: groups, files and tests are sorted.

Usage: scripts/milvus_suite_report.py --junit JUNIT_XML --out-md MD --out-json JSON
           [--before OLD_JSON] [--suite-repo R --suite-branch B --suite-commit C]
           [--pymilvus V] [--tags "L0 L1"] [--timeout S] [--workers N]
           [--wall-seconds S] [--project-commit C] [--binary TEXT] [--command CMD]
           [--date YYYY-MM-DD]
           [--files FILE...] [--dead-roles "ROLE ..."]
"""

import argparse
import datetime
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

SCHEMA = 1
OUTCOMES = ("passed", "failed", "errors", "skipped")


# --- reading the junit xml ------------------------------------------------------------


def _file_of(classname):
    """milvus_client.test_milvus_client_alias.TestX -> test_milvus_client_alias.py"""
    parts = classname.split(".")
    for part in parts:
        if part.startswith("test_"):
            return part + ".py"
    return parts[0] + ".py"


def _nodeid(classname, name):
    parts = classname.split(".")
    for i, part in enumerate(parts):
        if part.startswith("test_"):
            return "::".join([part + ".py"] + parts[i + 1:] + [name])
    return "::".join(parts + [name])


def _first_line(text):
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line
    return ""


def read_junit(path):
    """Returns {nodeid: record} with outcome, file, message, properties."""
    root = ET.parse(path).getroot()
    tests = {}
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        nodeid = _nodeid(classname, name)
        props = {}
        for prop in case.iter("property"):
            props.setdefault(prop.get("name"), prop.get("value", ""))
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            outcome, node = "failed", failure
        elif error is not None:
            outcome, node = "errors", error
        elif skipped is not None:
            outcome, node = "skipped", skipped
        else:
            outcome, node = "passed", None
        message = ""
        detail = ""
        if node is not None:
            message = _first_line(node.get("message", "")) or _first_line(node.text)
            detail = node.text or ""
        tests[nodeid] = {
            "file": _file_of(classname),
            "outcome": outcome,
            "message": message,
            "detail": detail,
            "props": props,
            "teardown_error": failure is not None and error is not None,
        }
    return tests


# --- grouping failures by cause -----------------------------------------------------

# gen_unique_str draws 8 characters from letters and digits; demanding a digit or a
# capital keeps ordinary words (`max_capacity`) intact.
_UNIQUE_SUFFIX = re.compile(
    r"\b([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?)_(?=[a-z]{0,7}[A-Z0-9])[A-Za-z0-9]{8}\b"
)


def scrub(text):
    """Replaces the suite's random name suffixes (gen_unique_str: `<prefix>_<8 chars>`)
    and object addresses so a message reads the same from run to run, and shortens the
    suite's over-long names (`aaaa...`, 256 times) to `a…(×256)`."""
    text = _UNIQUE_SUFFIX.sub(lambda m: m.group(1) + "_*", text)
    text = re.sub(r"\b0x[0-9a-f]{6,}\b", "0x…", text)
    return re.sub(r"(.)\1{19,}", lambda m: f"{m.group(1)}…(×{len(m.group(0))})", text)


def norm(text, limit=110):
    """A message reduced to its shape: names, numbers and quoted values elided."""
    t = scrub(text)
    t = re.sub(r"\[[^\[\]]{40,}\]", "[...]", t)
    t = re.sub(r"(['\"])(?:(?!\1).){1,200}\1", "'…'", t)
    t = re.sub(r"\b\d+(\.\d+)?\b", "N", t)
    t = " ".join(t.split())
    return t if len(t) <= limit else t[: limit - 1] + "…"


def short(text, limit=300):
    t = " ".join(scrub(text).split())
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _split_answer(answer):
    """'error: code=1100 message=...' -> ('error', '1100', '...'); 'success: x' -> ('success', None, 'x')."""
    m = re.match(r"error: code=(\S*) message=(.*)$", answer or "", re.S)
    if m:
        return "error", m.group(1), m.group(2)
    if (answer or "").startswith("success"):
        return "success", None, answer[len("success: "):]
    return None, None, answer or ""


ERROR_CHECKS = ("error_response", "err_res")

# This server's answer to an RPC it does not implement (code 10, "service unimplemented").
_UNIMPLEMENTED = [
    re.compile(r"(\w+) is not supported by this Milvus-compatible cluster"),
    re.compile(r"[Uu]nimplemented method[: ]+['\"]?([\w./]+)"),
]


def unimplemented_method(message):
    for pattern in _UNIMPLEMENTED:
        m = pattern.search(message or "")
        if m:
            return m.group(1)
    if re.search(r"\bUNIMPLEMENTED\b|service unimplemented", message or ""):
        return "an RPC"
    return None


def expected_shape(message):
    """The rule an expected error message names: its text up to the first ':' or '['
    (where Milvus appends the offending value), names and numbers elided."""
    head = re.split(r"[:\[]", message or "", maxsplit=1)[0].strip()
    return norm(head or message or "", 90)


def actual_shape(message):
    """An error message of this server with the names it mentions elided, so the same
    refusal groups together whichever field, index or collection it was about."""
    t = message or ""
    t = re.sub(r"\bv\d+\.\d+\.\d+-ha[\w.]*", "v…", t)
    t = re.sub(r"with params \[.*\]",
               lambda m: "with params [… json_path …]" if "json_path" in m.group(0) else "with params […]", t)
    t = re.sub(r"\bhas index [\w.]+", "has index …", t)
    t = re.sub(r"\binvalid index type: [^,;]+", "invalid index type: …", t)
    t = re.sub(r"\bcannot parse expression: .*?, error:", "cannot parse expression: …, error:", t)
    t = re.sub(r"\bfield:? ([A-Za-z_][\w]*)(?=:| already| is\b| not\b|$)",
               lambda m: m.group(0).replace(m.group(1), "…"), t)
    t = re.sub(r"\bvector field \w+", "vector field …", t)
    t = re.sub(r"\[(\w+)=[^\]]*\]", r"[\1=…]", t)
    return norm(t, 150)


def classify(rec):
    """Returns the cause (the group title) of a failed or errored test."""
    props = rec["props"]
    message = rec["message"]
    api = props.get("api", "")
    check = props.get("check", "")
    kind, _code, actual = _split_answer(props.get("actual", ""))
    if kind != "error" and props.get("raised"):
        # The call succeeded and its answer raised later (a search iterator's next page).
        kind, _code, actual = _split_answer(props["raised"])
    phase = props.get("phase", "")
    where = f" (in {phase})" if phase in ("setup", "teardown") else ""

    if re.search(r"Timeout >\s*[\d.]+s", message):
        return "timeout: the test did not finish within the per-test limit"
    if not api:
        if "ConnectionError" in message or "UNAVAILABLE" in message or "Fail connecting" in message:
            return "connection to the server failed" + where
        return f"other failure{where}: {norm(message)}"
    if kind == "error":
        # Whether the suite expected success or another error, the cause is this answer:
        # grouping by it puts together what one change on this side fixes.
        method = unimplemented_method(actual)
        if method:
            return f"not implemented: {method}"
        return f"error{where}: {actual_shape(actual)}"
    if check in ERROR_CHECKS:
        _k, _c, expected = _split_answer(props.get("expected", ""))
        return f"no error where the suite expects “{expected_shape(expected)}”"
    return f"wrong answer: {api} ({check})"


# --- aggregation ----------------------------------------------------------------------


def counts(records):
    c = {k: 0 for k in OUTCOMES}
    for r in records:
        c[r] += 1
    c["tests"] = sum(c[k] for k in OUTCOMES)
    run = c["tests"] - c["skipped"]
    c["pass_rate"] = round(100.0 * c["passed"] / run, 1) if run else None
    return c


def failure_entry(nodeid, rec):
    props = rec["props"]
    entry = {
        "test": nodeid,
        "outcome": rec["outcome"],
        "cause": classify(rec),
    }
    for key in ("api", "check", "phase", "expected", "actual", "raised"):
        if props.get(key):
            entry[key] = short(props[key], 400)
    # The suite's own assertion text adds nothing to an expected/actual pair
    # ("Response of API x expect True, but got False"); keep it for the rest.
    answered = props.get("raised") or props.get("actual", "").startswith("error")
    if not (answered or props.get("check") in ERROR_CHECKS):
        entry["message"] = short(rec["message"])
    if rec["teardown_error"]:
        entry["teardown_error"] = True
    return entry


def build(args, tests):
    files = sorted(set(os.path.basename(f) for f in (args.files or [])) | {r["file"] for r in tests.values()})
    per_file = {}
    for f in files:
        per_file[f] = counts([r["outcome"] for r in tests.values() if r["file"] == f])
    failures = [failure_entry(n, r) for n, r in sorted(tests.items()) if r["outcome"] in ("failed", "errors")]
    return {
        "schema": SCHEMA,
        "suite": {
            "repo": args.suite_repo,
            "branch": args.suite_branch,
            "commit": args.suite_commit,
            "path": "tests/python_client/milvus_client",
        },
        "pymilvus": args.pymilvus,
        "date": args.date,
        "project_commit": args.project_commit,
        "binary": args.binary,
        "tags": args.tags.split(),
        "timeout_seconds": args.timeout,
        "workers": args.workers,
        "wall_seconds": args.wall_seconds,
        "command": args.command,
        "dead_roles": sorted(args.dead_roles.split()),
        "totals": counts([r["outcome"] for r in tests.values()]),
        "files": per_file,
        "tests": {n: r["outcome"] for n, r in sorted(tests.items())},
        "failures": failures,
    }


# --- markdown ----------------------------------------------------------------------------


def _rate(c):
    return "–" if c is None or c.get("pass_rate") is None else f"{c['pass_rate']:.1f}%"


def _duration(seconds):
    if seconds is None:
        return "–"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min {s:02d} s"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def _md_escape(text):
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text):
    text = text.replace("\n", " ")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render(report, before):
    t = report["totals"]
    suite = report["suite"]
    out = []
    w = out.append
    w("# Compatibility: Milvus's MilvusClient test suite against this cluster")
    w("")
    w("Generated by `scripts/milvus_suite.sh` (report: `scripts/milvus_suite_report.py`); do not edit by hand.")
    w("The suite is Milvus's own pytest suite for the MilvusClient API (`tests/python_client/milvus_client`),")
    w("run unchanged with pymilvus against a private cluster of this binary: its own etcd and")
    w("nats-server and the eight roles, one process each.")
    w("")
    w(f"**{t['passed']} of {t['tests'] - t['skipped']} tests pass ({_rate(t)})**; "
      f"{t['failed']} fail, {t['errors']} error, {t['skipped']} skipped by the suite itself.")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| Suite | {suite['repo']}, branch `{suite['branch']}`, commit `{suite['commit']}`, `{suite['path']}` |")
    w(f"| Levels | {' '.join(report['tags'])} (the suite's `--tags`; other levels are deselected) |")
    w(f"| pymilvus | {report['pymilvus']} |")
    w(f"| Date | {report['date']} |")
    w(f"| This project | {report['project_commit']}; binary: {report.get('binary', 'unknown')} |")
    w(f"| Per-test timeout | {report['timeout_seconds']} s (a hang counts as a failure) |")
    w(f"| Workers | {report['workers']} |")
    w(f"| Wall time of the suite | {_duration(report['wall_seconds'])} |")
    dead = ", ".join(report["dead_roles"]) or "none"
    w(f"| Roles that exited during the run | {dead} |")
    w(f"| Command | {_code(report['command'])} |")
    if before:
        bs = before.get("suite", {})
        w(f"| Before | the run of {before.get('date', '?')} (project {before.get('project_commit', '?')}, "
          f"suite commit `{bs.get('commit', '?')}`) |")
    w("")

    w("## Results per file")
    w("")
    bfiles = (before or {}).get("files", {})
    if before:
        w("| File | Tests | Passed | Failed | Errors | Skipped | Pass rate | Before: passed | Before: pass rate | Δ passed |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        w("| File | Tests | Passed | Failed | Errors | Skipped | Pass rate |")
        w("|---|---:|---:|---:|---:|---:|---:|")
    rows = sorted(report["files"].items())
    rows.append(("**Total**", t))
    for name, c in rows:
        label = name if name.startswith("**") else f"`{name}`"
        cells = [label, str(c["tests"]), str(c["passed"]), str(c["failed"]), str(c["errors"]),
                 str(c["skipped"]), _rate(c)]
        if before:
            b = before.get("totals") if name.startswith("**") else bfiles.get(name)
            if b:
                delta = c["passed"] - b["passed"]
                cells += [f"{b['passed']}/{b['tests']}", _rate(b), f"{delta:+d}"]
            else:
                cells += ["–", "–", "–"]
        w("| " + " | ".join(cells) + " |")
    w("")

    if before and before.get("tests"):
        btests = before["tests"]
        now = report["tests"]
        fixed = sorted(n for n, o in now.items() if o == "passed" and btests.get(n) in ("failed", "errors"))
        broke = sorted(n for n, o in now.items() if o in ("failed", "errors") and btests.get(n) == "passed")
        new = sorted(n for n in now if n not in btests)
        gone = sorted(n for n in btests if n not in now)
        w("## Changes since before")
        w("")
        w(f"{len(fixed)} tests pass now that failed before, {len(broke)} fail now that passed before; "
          f"{len(new)} tests are new to this run, {len(gone)} of the earlier run are not in it.")
        w("")
        for title, names in (("Now passing", fixed), ("Now failing (regressions)", broke)):
            if names:
                w(f"<details><summary>{title} ({len(names)})</summary>")
                w("")
                for n in names:
                    w(f"- `{scrub(n)}`")
                w("")
                w("</details>")
                w("")

    failures = report["failures"]
    groups = {}
    for f in failures:
        groups.setdefault(f["cause"], []).append(f)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    w("## Failures by cause")
    w("")
    if not ordered:
        w("None.")
        w("")
        return "\n".join(out).rstrip() + "\n"
    w(f"{len(failures)} failed or errored tests in {len(ordered)} groups. The grouping is heuristic: "
      "an RPC this server does not implement; an error where the suite expects success (grouped by "
      "this server's message, names elided); success, or a different error, where the suite expects "
      "an error (grouped by the rule the expected message names); a wrong answer (grouped by API and "
      "check); or the failure's first line. *expected* is what the suite asserts: for an error, the "
      "code it names and the message it looks for as a substring (the suite compares only the "
      "message); *actual* is what this server answered; *raised* is an error raised while the suite "
      "consumed an answer that had succeeded (a search iterator's next page).")
    w("")
    w("| # | Cause | APIs | Tests |")
    w("|---:|---|---|---:|")

    def apis_of(items):
        return ", ".join(sorted({f["api"] for f in items if f.get("api")})) or "–"

    for i, (cause, items) in enumerate(ordered, 1):
        w(f"| {i} | {_md_escape(cause)} | {_md_escape(apis_of(items))} | {len(items)} |")
    w("")

    def answer_lines(f, full):
        """What the suite expected and what this server did; `full` for a group's example,
        else only what varies within a group (its title already names the answer)."""
        parts = []
        expects_error = f.get("expected", "").startswith("error")
        if f.get("expected") and f["expected"] != "success" and (full or expects_error):
            parts.append(f"expected: {_code(f['expected'])}")
        if full and f.get("actual"):
            parts.append(f"actual: {_code(f['actual'])}")
        if full and f.get("raised"):
            parts.append(f"raised: {_code(f['raised'])}")
        answered = f.get("actual", "").startswith("error") or f.get("raised")
        if not answered and not expects_error and f.get("message"):
            parts.append(_code(f["message"]))
        return parts

    for i, (cause, items) in enumerate(ordered, 1):
        w(f"### {i}. {_md_escape(cause)} ({len(items)})")
        w("")
        w(f"APIs: {apis_of(items)}. Example: `{scrub(items[0]['test'])}`")
        w("")
        for part in answer_lines(items[0], True):
            w(f"- {part}")
        w("")
        w(f"<details><summary>All {len(items)} tests</summary>")
        w("")
        for f in items:
            line = f"- `{scrub(f['test'])}`"
            if f["outcome"] == "errors":
                line += f" (error in {f.get('phase', 'setup')})"
            if f.get("teardown_error"):
                line += " (and a teardown error)"
            parts = answer_lines(f, False)
            w(line + ("<br>" + "<br>".join(parts) if parts else ""))
        w("")
        w("</details>")
        w("")
    return "\n".join(out).rstrip() + "\n"


# --- main ----------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--junit", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--before", help="an earlier compatibility.json (ignored when missing)")
    p.add_argument("--suite-repo", default="unknown")
    p.add_argument("--suite-branch", default="unknown")
    p.add_argument("--suite-commit", default="unknown")
    p.add_argument("--pymilvus", default="unknown")
    p.add_argument("--tags", default="L0 L1")
    p.add_argument("--timeout", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--wall-seconds", type=int, default=None)
    p.add_argument("--project-commit", default="unknown")
    p.add_argument("--binary", default="unknown", help="what the roles ran (version, build time)")
    p.add_argument("--command", default="scripts/milvus_suite.sh SUITE_DIR")
    p.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    p.add_argument("--files", nargs="*", default=[])
    p.add_argument("--dead-roles", default="")
    args = p.parse_args()

    before = None
    if args.before and os.path.exists(args.before):
        try:
            with open(args.before, encoding="utf-8") as fh:
                before = json.load(fh)
            if before.get("schema") != SCHEMA:
                print(f"milvus_suite_report.py: {args.before} has schema {before.get('schema')}; "
                      f"not using it as 'before'", file=sys.stderr)
                before = None
        except (OSError, ValueError) as e:
            print(f"milvus_suite_report.py: cannot read {args.before}: {e}; no 'before'", file=sys.stderr)
            before = None

    tests = read_junit(args.junit)
    report = build(args, tests)
    md = render(report, before)
    with open(args.out_json, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    with open(args.out_md, "w", encoding="utf-8") as fh:
        fh.write(md)
    t = report["totals"]
    print(f"milvus_suite_report.py: {t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
          f"{t['skipped']} skipped of {t['tests']} ({_rate(t)})")


if __name__ == "__main__":
    main()
