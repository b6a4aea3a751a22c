#!/usr/bin/env python3
"""Give a fresh clone's unchanged files the times they had in the previous CI run.

cargo decides what to rebuild by file times: a source file newer than the last build of its
crate makes the crate (and every crate, test and binary above it) build again. A fresh clone
gives every file the time of the clone, so CI would rebuild the whole workspace each run,
although the build cache outside the clone (`CARGO_TARGET_DIR`) already holds it.

    tools/ci-mtimes.py MANIFEST

MANIFEST (in the CI cache) records each tracked file's SHA-256 and time. A file whose content
is the one recorded gets the recorded time back; any other file gets the current time, so
cargo rebuilds what it touches. Not the clone's time: cargo rebuilds a crate only for a source
newer than the start of that crate's last build, and a clone made while another run was
building (before .ci/run could take the lock) is older than that build, which then stays.
This script runs under the lock, after every earlier run's build has ended, so the current
time is newer than all of them. The manifest is then rewritten for this run, with those
times, before anything is built: whatever this run builds, it builds from the content the
manifest now records.

Sound only if one CI run at a time uses the cache (.ci/run holds a lock on it), only for the
files git tracks (generated files are not compared), and only if no binary keeps its clone's
path: a crate that is not rebuilt keeps the path of the clone that built it, which may be
gone or hold other files. So `env!("CARGO_MANIFEST_DIR")` is refused here; the tests read
it at run time (cargo sets it), the bench reads from the working directory. For the same
reason `include_str!`/`include_bytes!` of a file outside the including package is refused:
cargo records such a file by its absolute path, so a build from another clone would keep
checking (and embedding) that clone's copy.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time

BAKED_PATH = re.compile(rb'env!\(\s*"CARGO_MANIFEST_DIR"')
INCLUDE = re.compile(rb'include_(?:str|bytes)!\(\s*"([^"]+)"')


def package_root(path):
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.isfile(os.path.join(d, "Cargo.toml")) and d != os.path.dirname(d):
        d = os.path.dirname(d)
    return d


def includes_outside(path, content):
    root = package_root(path) + os.sep
    for m in INCLUDE.finditer(content):
        target = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), m.group(1).decode()))
        if not target.startswith(root):
            return True
    return False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[0] + "\nusage: tools/ci-mtimes.py MANIFEST")
    manifest = sys.argv[1]
    try:
        with open(manifest) as f:
            before = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        before = {}

    files = subprocess.run(["git", "ls-files", "-z"], check=True, capture_output=True).stdout
    now = time.time_ns()
    after, restored, baked = {}, 0, []
    for path in filter(None, files.decode().split("\0")):
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            content = f.read()
        digest = hashlib.sha256(content).hexdigest()
        if path.endswith(".rs") and (BAKED_PATH.search(content) or includes_outside(path, content)):
            baked.append(path)
        known = before.get(path)
        if known and known[0] == digest:
            os.utime(path, ns=(known[1], known[1]))
            restored += 1
        else:
            os.utime(path, ns=(now, now))
        after[path] = [digest, os.stat(path).st_mtime_ns]

    if baked:
        sys.exit(
            "ci-mtimes: these sources compile their clone's path into a binary, or include a "
            "file outside their package, which a reused build would keep (read it at run time, "
            "from std::env::var_os(\"CARGO_MANIFEST_DIR\")): "
            + ", ".join(baked)
        )

    tmp = manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(after, f)
    os.replace(tmp, manifest)
    print(f"ci-mtimes: {restored} of {len(after)} tracked files are unchanged since the last run and keep their times")


if __name__ == "__main__":
    main()
