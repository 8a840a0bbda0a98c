#!/usr/bin/python3
"""Runs do-codegen on XML files it must refuse.

    check-bad.py DO_CODEGEN BAD.xml...

Each file's first line is a comment `<!-- do-codegen must fail at line N -->`.
do-codegen must exit with status 1 and print `FILE:N:COL: message`.
"""

import os
import re
import subprocess
import sys
import tempfile


def main():
    codegen, files = sys.argv[1], sys.argv[2:]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.h")
        for path in files:
            with open(path, encoding="utf-8") as fh:
                m = re.search(r"must fail at line (\d+)", fh.readline())
            if not m:
                print("not ok: %s has no expected line" % path)
                failures += 1
                continue
            line = m.group(1)
            proc = subprocess.run([codegen, "--header", out, path],
                                  capture_output=True, text=True, check=False)
            want = re.compile(r"^%s:%s:\d+: \S" % (re.escape(path), line))
            if proc.returncode == 1 and want.match(proc.stderr):
                print("ok: %s" % proc.stderr.strip())
            else:
                print("not ok: %s: exit %d, stderr %r, wanted line %s"
                      % (path, proc.returncode, proc.stderr, line))
                failures += 1
            if os.path.exists(out):
                print("not ok: %s: a header was written" % path)
                failures += 1
                os.unlink(out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
