#!/usr/bin/env python3
"""Checks two rules of the code's shape (shared/src/lib.rs states the layers):

1. Layers. No module of the shared crate imports a module of a higher layer. From the top:
   the edge (`http`, `config`, `lib`); the use cases (writes, verify, leaks, listing, usage);
   auth and the credential cache; the store; the model (keys, secrets, events, errors, the
   authority rule); the utilities (digest, telemetry, the DynamoDB client, the request's
   deadline). An import is a `crate::…` path outside comments and
   outside `#[cfg(test)]` modules (a test may build its world from any layer).
2. Length. Outside tests, no function is over 60 lines in shared/ and over 80 in bench/ and
   tools/ (its signature to its closing brace).

    python3 tools/check-structure.py          prints each breach and exits 1 if there is one
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared" / "src"

# Each module (a path under shared/src, without .rs; a folder's mod.rs is the folder) and its
# layer. A module not listed takes the layer of its longest listed prefix.
LAYERS = {
    "http": 7, "config": 7, "lib": 7,
    "write": 6, "expiry": 6, "verify": 6, "leak": 6, "page": 6, "usage": 6, "publish": 6,
    "auth": 5, "cache": 5,
    "store": 4,
    "key": 3, "owner": 3, "quota": 3, "secret": 3, "audit": 3, "audit/event": 3, "error": 3, "authority": 3,
    "meta": 3, "allow": 3,
    "digest": 2, "telemetry": 2, "client": 2, "deadline": 2,
}
LAYER_NAMES = {7: "edge", 6: "use case", 5: "auth and cache", 4: "store", 3: "model", 2: "utility"}

LIMITS = [("shared", 60), ("bench", 80), ("tools", 80)]


def strip_code(text):
    """The text with comments, string and char literals blanked (newlines kept), so that
    braces and paths are read from code only."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 300])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and (m := re.match(r"'(\\(x..|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 12])):
            out.append(" " * m.end())
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(code):
    """The code with every `#[cfg(test)]` item (a module or a function) blanked."""
    lines = code.split("\n")
    keep = list(lines)
    i = 0
    while i < len(lines):
        if re.match(r"\s*#\[cfg\(test\)\]", lines[i]):
            depth, j, opened = 0, i, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                opened = opened or "{" in lines[j]
                if (opened and depth <= 0) or (not opened and lines[j].rstrip().endswith(";")):
                    break
                j += 1
            for k in range(i, min(j + 1, len(lines))):
                keep[k] = ""
            i = j + 1
        else:
            i += 1
    return "\n".join(keep)


def module_of(path):
    rel = path.relative_to(SHARED).with_suffix("").as_posix()
    return rel[: -len("/mod")] if rel.endswith("/mod") else rel


def layer_of(module):
    parts = module.split("/")
    for k in range(len(parts), 0, -1):
        if "/".join(parts[:k]) in LAYERS:
            return LAYERS["/".join(parts[:k])]
    return None


def target_module(path):
    """The module a `crate::a::b::c` path names: its longest prefix that is a file or folder."""
    parts = path.split("::")[1:]
    for k in range(len(parts), 0, -1):
        base = SHARED.joinpath(*parts[:k])
        if base.with_suffix(".rs").exists() or (base / "mod.rs").exists():
            return "/".join(parts[:k])
    return parts[0] if parts else None


def imports(code):
    """Every `crate::…` path in the code, with `use crate::{a, b::c}` groups expanded."""
    found = set()
    for m in re.finditer(r"\bcrate::\{([^}]*)\}", code):
        for item in m.group(1).split(","):
            item = item.strip().split(" ")[0]
            if item:
                found.add("crate::" + item.split("{")[0].rstrip(":"))
    for m in re.finditer(r"\bcrate((?:::[A-Za-z_][A-Za-z0-9_]*)+)", code):
        found.add("crate" + m.group(1))
    return found


def check_layers():
    breaches = []
    for path in sorted(SHARED.rglob("*.rs")):
        module = module_of(path)
        own = layer_of(module)
        if own is None:
            breaches.append(f"{path.relative_to(ROOT)}: module {module} has no layer in {__file__}")
            continue
        code = without_tests(strip_code(path.read_text()))
        for imp in sorted(imports(code)):
            target = target_module(imp)
            theirs = layer_of(target) if target else None
            if theirs is not None and theirs > own:
                breaches.append(
                    f"{path.relative_to(ROOT)}: {module} ({LAYER_NAMES[own]}) imports {imp} "
                    f"({LAYER_NAMES[theirs]}), a higher layer"
                )
    return breaches


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def long_functions(path, limit):
    code = without_tests(strip_code(path.read_text())).split("\n")
    found = []
    i = 0
    while i < len(code):
        m = FN.match(code[i])
        if not m:
            i += 1
            continue
        depth, j, opened = 0, i, False
        while j < len(code):
            depth += code[j].count("{") - code[j].count("}")
            opened = opened or "{" in code[j]
            if opened and depth <= 0:
                break
            if not opened and code[j].rstrip().endswith(";"):
                break
            j += 1
        lines = j - i + 1
        if opened and lines > limit:
            found.append(f"{path.relative_to(ROOT)}:{i + 1}: fn {m.group(7)} is {lines} lines (limit {limit})")
        # Functions nested inside are measured on their own too.
        i += 1
    return found


def check_lengths():
    breaches = []
    for top, limit in LIMITS:
        for path in sorted((ROOT / top).rglob("*.rs")):
            rel = path.relative_to(ROOT).parts
            if "tests" in rel or "target" in rel or "fuzz" in rel:
                continue
            breaches += long_functions(path, limit)
    return breaches


def main():
    breaches = check_layers() + check_lengths()
    for b in breaches:
        print(b)
    if breaches:
        print(f"check-structure: {len(breaches)} breach(es)")
        return 1
    print("check-structure: layers and function lengths: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
