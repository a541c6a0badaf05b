#!/usr/bin/env python3
"""report_fields.py MANPAGE REPORT.json - checks `mtasts-ctl report
--format json` against the fields that mtasts-ctl(1) documents (section
REPORT FIELDS, subsection JSON: a ".TP" / ".B path" / "(type) ..." entry a
field, KIND, ACTION and OUTCOME standing for the words the section names):

  - every field of the report is documented, with the documented type;
  - every documented field is in the report (arrays: in their entries);
  - the words standing for KIND, ACTION, OUTCOME are exactly those listed.

Prints one line per problem; exit status 1 when there is any.
"""
import json
import re
import sys

TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
}


def documented(man):
    text = open(man, encoding="utf-8").read()
    sec = text.split(".SH REPORT FIELDS", 1)[1].split("\n.SH ", 1)[0]
    intro, rest = sec.split(".SS JSON", 1)
    json_part = rest.split("\n.SS ", 1)[0]
    words = {}
    # ".I KIND\nis a path kind (dane, mta-sts, ...)": the placeholder's words.
    for m in re.finditer(r"^\.I (KIND|ACTION|OUTCOME)\n[^(]*\(([^)]*)\)", intro, re.M):
        words[m.group(1)] = [w.strip() for w in m.group(2).split(",")]
    fields = {}
    lines = json_part.split("\n")
    for i, line in enumerate(lines):
        if line == ".TP" and i + 2 < len(lines) and lines[i + 1].startswith(".B "):
            name = lines[i + 1][3:].strip()
            m = re.match(r"\(([a-z ]+)\)", lines[i + 2])
            if not m:
                raise SystemExit("no (type) for " + name)
            fields[name] = m.group(1)
    return fields, words


def leaves(v, path, out):
    if isinstance(v, dict) and v:
        for k, x in v.items():
            leaves(x, path + [k], out)
    elif isinstance(v, list) and v:
        for x in v:
            leaves(x, path[:-1] + [path[-1] + "[]"], out)
    else:
        out.append((path, v))


def main():
    fields, words = documented(sys.argv[1])
    report = json.load(open(sys.argv[2]))
    problems = []
    for p in ("KIND", "ACTION", "OUTCOME"):
        if p not in words:
            problems.append("the man page does not list the words of " + p)
    patterns = []
    for name, typ in fields.items():
        rx = re.escape(name).replace(r"\[\]", r"\[\]")
        for p, ws in words.items():
            rx = rx.replace(p, "(" + "|".join(re.escape(w) for w in ws) + ")")
        patterns.append((name, re.compile("^" + rx + "$"), typ))
    seen = set()
    found = []
    leaves(report, [], found)
    for path, value in found:
        dotted = ".".join(path)
        match = [(n, t) for n, rx, t in patterns if rx.match(dotted)]
        if not match:
            problems.append("not documented: %s" % dotted)
            continue
        name, typ = match[0]
        seen.add(name)
        nullable = typ.endswith(" or null")
        base = typ[: -len(" or null")] if nullable else typ
        if value is None and nullable:
            continue
        if base not in TYPES or not TYPES[base](value):
            problems.append("%s is %r, documented as %s" % (dotted, value, typ))
    dotted_all = {".".join(p) for p, _ in found}
    for name, rx, typ in patterns:
        if name not in seen:
            problems.append("documented, not in the report: " + name)
            continue
        # Each placeholder's words all there (paths holds all six kinds).
        names = [name]
        for p, ws in words.items():
            names = [n.replace(p, w) for n in names for w in (ws if p in n else [None])] \
                if any(p in n for n in names) else names
        for n in names:
            if n not in dotted_all:
                problems.append("documented, not in the report: " + n)
    for p in problems:
        print(p)
    print("%d fields documented, %d values checked, %d problems" % (len(fields), len(found), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
