#!/usr/bin/env python3
"""Fills the generated blocks of bench/README.md from the results files (make bench-readme;
make bench and make bench-coldstart run it at their end).

A block is the text between a line

    <!-- results/FILE.md#HEADING -->

and the next line `<!-- end -->`. It becomes the part of bench/results/FILE.md under the
heading HEADING (any level), up to the next heading of the same or a higher level. Nothing
else in the README changes, so a rerun of the benchmark changes only what the results files
say. A block whose file or heading is missing fails the run.

    bench/render-readme.py [README [RESULTS_DIR]]
"""
import pathlib
import re
import sys

BEGIN = re.compile(r"^<!-- results/(?P<file>[^#]+)#(?P<heading>.+) -->$")
END = "<!-- end -->"
HEADING = re.compile(r"^(#+) (.*)$")


def section(text, heading, where):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m and m.group(2).strip().startswith(heading):
            level = len(m.group(1))
            body = []
            for rest in lines[i + 1 :]:
                n = HEADING.match(rest)
                if n and len(n.group(1)) <= level:
                    break
                body.append(rest)
            return "\n".join(body).strip("\n")
    raise SystemExit(f"render-readme: no heading '{heading}' in {where}")


def render(readme, results):
    out, lines, i = [], readme.read_text().splitlines(), 0
    blocks = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        m = BEGIN.match(line)
        if not m:
            continue
        path = results / m.group("file")
        if not path.exists():
            raise SystemExit(f"render-readme: {path} does not exist (run make bench)")
        out += ["", section(path.read_text(), m.group("heading"), path), ""]
        while i < len(lines) and lines[i] != END:
            i += 1
        if i == len(lines):
            raise SystemExit(f"render-readme: a block of {path} has no '{END}'")
        out.append(END)
        i += 1
        blocks += 1
    return "\n".join(out) + "\n", blocks


def main():
    readme = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "bench/README.md")
    results = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else readme.parent / "results")
    text, blocks = render(readme, results)
    readme.write_text(text)
    print(f"render-readme: {blocks} blocks of {readme} from {results}")


if __name__ == "__main__":
    main()
