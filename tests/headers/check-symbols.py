#!/usr/bin/python3
"""Checks that libdo.so exports exactly its public API.

    check-symbols.py NM LIBDO_SO LIBDO_SYM HEADER...

The public API is every function declared with DO_API in the public headers.
The exports are `nm -D --defined-only` of the shared library.  Each export
must be declared and each declaration exported, so that a symbol neither
leaks (a private do_wire_* without -fvisibility=hidden) nor goes missing
(declared, never defined).  When libdo.sym lists names explicitly, the
exports must match that list too; its wildcard patterns must cover every
export.
"""

import fnmatch
import re
import subprocess
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared(headers):
    names = {}
    for path in headers:
        with open(path, encoding="utf-8") as fh:
            text = strip_comments(fh.read())
        for m in re.finditer(r"\bDO_API\b([^;{]*?)\(", text):
            ident = re.findall(r"[A-Za-z_]\w*", m.group(1))
            if ident and not m.group(1).lstrip().startswith("__attribute__"):
                names[ident[-1]] = path
    # The macro's own definition is not a declaration.
    names.pop("visibility", None)
    return names


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib],
                         check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2].split("@")[0]
        if kind in ("A",):  # version nodes
            continue
        names.add(name)
    return names


def version_script(path):
    with open(path, encoding="utf-8") as fh:
        text = strip_comments(re.sub(r"#[^\n]*", " ", fh.read()))
    explicit, patterns = set(), []
    for block in re.findall(r"global\s*:(.*?)(?:local\s*:|\})", text, flags=re.S):
        for entry in block.split(";"):
            entry = entry.strip()
            if not entry:
                continue
            if any(c in entry for c in "*?["):
                patterns.append(entry)
            else:
                explicit.add(entry)
    return explicit, patterns


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    nm, lib, sym, headers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    decl = declared(headers)
    exp = exported(nm, lib)
    explicit, patterns = version_script(sym)
    problems = []

    for name in sorted(exp - set(decl)):
        problems.append("exported but not declared with DO_API: %s" % name)
    for name in sorted(set(decl) - exp):
        problems.append("declared in %s but not exported: %s" % (decl[name], name))
    if explicit:
        for name in sorted(exp - explicit):
            if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                problems.append("exported but not in libdo.sym: %s" % name)
        for name in sorted(explicit - exp):
            problems.append("listed in libdo.sym but not exported: %s" % name)
    elif patterns:
        for name in sorted(exp):
            if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                problems.append("exported but matching no libdo.sym pattern: %s" % name)

    print("# %d declared, %d exported, %d listed in libdo.sym%s"
          % (len(decl), len(exp), len(explicit),
             " (patterns: %s)" % " ".join(patterns) if patterns else ""))
    for p in problems:
        print("not ok: " + p)
    if problems:
        return 1
    if not decl:
        print("not ok: no DO_API declaration found")
        return 1
    print("ok: exports match the public API")
    return 0


if __name__ == "__main__":
    sys.exit(main())
