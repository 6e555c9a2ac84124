#!/usr/bin/env python3
"""Lines of code of the task-set family (issue 18's count): every line of
src/task_set.rs and src/task_set/*.rs that is not blank, a comment, a doc
comment, `#[cfg(test)]` or inside `mod tests`.

    python3 .ci/loc.py              # per file and the total
    python3 .ci/loc.py --max 1000   # also fails if the total is above 1000
"""
import glob
import sys


def count(path):
    n, depth, in_block, in_tests = 0, 0, False, False
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if in_tests:
            depth += line.count("{") - line.count("}")
            in_tests = depth > 0
            continue
        if in_block:
            in_block = "*/" not in s
            continue
        if s.startswith("/*"):
            in_block = "*/" not in s
            continue
        if not s or s.startswith("//") or s == "#[cfg(test)]":
            continue
        if s.startswith("mod tests"):
            depth = line.count("{") - line.count("}")
            in_tests = depth > 0
            continue
        n += 1
    return n


def main():
    args = sys.argv[1:]
    limit = int(args[args.index("--max") + 1]) if "--max" in args else None
    files = ["src/task_set.rs"] + sorted(glob.glob("src/task_set/*.rs"))
    total = 0
    for path in files:
        n = count(path)
        print(f"{n:5} {path}")
        total += n
    print(f"{total:5} total")
    if limit is not None and total > limit:
        sys.exit(f"loc.py: the task-set family has {total} lines of code, above {limit}")


main()
