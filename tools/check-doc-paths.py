#!/usr/bin/env python3
"""Fails when a document names a repository path that the checkout does not have.

The documents are README.md, SECURITY.md, docs/*.md and bench/README.md. A path is anything
that starts with one of the repository's folders (shared/, functions/, tests/, ...) or is one
of its top-level files (template.yaml, openapi.yaml, Makefile, ...), and every relative
markdown link target. It must exist in the checkout: a path ending in `/` must be a folder;
`*` and a `<placeholder>` match like a shell glob; a `#fragment` of a link to a markdown file
must be one of its headings. A path that git ignores (made by a tool, such as fuzz/corpus/)
need not exist. A path with a line number (`file.rs:42`) is refused too: line
numbers go stale with every edit. Rust items after a path (`tests/api/list.rs::name`) are
not checked.

    python3 tools/check-doc-paths.py        (make lint-docs, part of make test and make lint)
"""
import glob
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("shared", "functions", "tests", "tools", "bench", "fuzz", "events", "docs", ".ci", "demo")
TOP_FILES = ("template.yaml", "openapi.yaml", "Makefile", "Cargo.toml", "Cargo.lock",
             "samconfig.toml", "README.md", "SECURITY.md")
PATH_CHARS = r"[\w.*<>/-]"
# Not inside a longer path or a URL: nothing path-like right before it.
MENTION = re.compile(
    r"(?<![\w./$-])((?:%s)/%s*|(?:%s)(?![\w.-]))(:\d+)?"
    % ("|".join(re.escape(f) for f in FOLDERS), PATH_CHARS, "|".join(re.escape(f) for f in TOP_FILES)))
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def documents():
    names = ["README.md", "SECURITY.md", "bench/README.md"]
    names += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    return [ROOT / n for n in names if (ROOT / n).exists()]


def exists(path):
    """Whether `path` (relative to the root, maybe a glob, maybe ending in /) is there."""
    pattern = re.sub(r"<[^<>/]*>", "*", path.rstrip("/"))
    hits = [pathlib.Path(h) for h in glob.glob(str(ROOT / pattern))] if pattern else [ROOT]
    return any(h.is_dir() or not path.endswith("/") for h in hits) or ignored(path)


def ignored(path):
    """Whether git ignores `path`: a folder or file that a tool makes, not one to commit."""
    concrete = re.sub(r"<[^<>/]*>|\*", "x", path)
    try:
        run = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", concrete])
    except OSError:
        return False
    return run.returncode == 0


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc):
    found, fenced = set(), False
    for line in doc.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            base, n = slug(line.lstrip("#")), 0
            while (base if n == 0 else f"{base}-{n}") in found:
                n += 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def check_link(doc, target):
    """The problem with a relative markdown link, or None."""
    if re.match(r"[a-z]+:", target):
        return None
    path, _, fragment = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    try:
        rel = dest.relative_to(ROOT)
    except ValueError:
        return f"link {target} leaves the repository"
    if not dest.exists():
        return f"link {target}: {rel} does not exist"
    if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
        return f"link {target}: {rel} has no heading #{fragment}"
    return None


def problems(doc):
    where = doc.relative_to(ROOT)
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        for m in MENTION.finditer(line):
            path = re.sub(r"::.*", "", m.group(1)).rstrip(".,;:")
            if m.group(2):
                yield f"{where}:{number}: {path}{m.group(2)} names a line number"
            elif not exists(path):
                yield f"{where}:{number}: {path} does not exist"
        for m in LINK.finditer(line):
            problem = check_link(doc, m.group(1))
            if problem:
                yield f"{where}:{number}: {problem}"


def main():
    found = [p for doc in documents() for p in problems(doc)]
    for problem in found:
        print(problem)
    if found:
        sys.exit(f"check-doc-paths: {len(found)} path(s) above do not exist in the checkout")
    print(f"check-doc-paths: every path in {len(documents())} documents exists")


if __name__ == "__main__":
    main()
