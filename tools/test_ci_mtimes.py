#!/usr/bin/env python3
"""tools/ci-mtimes.py against a real cargo build: a changed file is rebuilt, whenever its
clone was made.

Two CI runs share one target directory and one manifest, as .ci/run's do. The second run's
clone is made before the first run builds (a clone waiting on .ci/run's lock while another
run builds), so its changed source is older than that build: the second run must still
build, and run, the changed code. A throwaway crate in a temporary folder, offline; `make
test` runs this (a few seconds).

    python3 tools/test_ci_mtimes.py
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

MTIMES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ci-mtimes.py")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@localhost",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_COMMITTER_EMAIL": "ci@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class ChangedFilesAreRebuilt(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ci-mtimes-test-")
        self.dir = self.tmp.name
        self.env = dict(os.environ, **GIT_ENV, CARGO_TARGET_DIR=os.path.join(self.dir, "target"))
        for var in ("RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_INCREMENTAL"):
            self.env.pop(var, None)
        self.manifest = os.path.join(self.dir, "ci-mtimes.json")
        self.origin = os.path.join(self.dir, "origin")
        os.makedirs(os.path.join(self.origin, "src"))
        self.write("Cargo.toml", '[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n')
        self.write("Cargo.lock", "version = 4\n\n[[package]]\nname = \"probe\"\nversion = \"0.1.0\"\n")
        self.commit("one")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, path, text):
        with open(os.path.join(self.origin, path), "w") as f:
            f.write(text)

    def run_in(self, cwd, *cmd):
        return subprocess.run(cmd, cwd=cwd, env=self.env, check=True, capture_output=True, text=True).stdout

    def commit(self, says):
        self.write("src/main.rs", f'fn main() {{ println!("{says}"); }}\n')
        if not os.path.isdir(os.path.join(self.origin, ".git")):
            self.run_in(self.origin, "git", "init", "-q")
        self.run_in(self.origin, "git", "add", "-A")
        self.run_in(self.origin, "git", "commit", "-q", "-m", says)

    def clone(self, name):
        path = os.path.join(self.dir, name)
        self.run_in(self.dir, "git", "clone", "-q", self.origin, path)
        return path

    def ci_run(self, clone):
        """What .ci/run does with a clone: the file times, then a build, then the binary."""
        self.run_in(clone, sys.executable, MTIMES, self.manifest)
        self.run_in(clone, "cargo", "build", "--quiet", "--offline", "--locked")
        return self.run_in(clone, os.path.join(self.env["CARGO_TARGET_DIR"], "debug", "probe")).strip()

    def test_a_clone_made_before_the_previous_build_runs_its_own_code(self):
        first = self.clone("first")
        self.commit("two")
        # Cloned now, while the first run has yet to build: its files are older than that build.
        second = self.clone("second")
        self.assertEqual(self.ci_run(first), "one")
        self.assertEqual(self.ci_run(second), "two", "the second run ran the first run's build")
        # The manifest records the time the changed file was given, which the build came after.
        with open(self.manifest) as f:
            recorded = json.load(f)["src/main.rs"][1]
        self.assertEqual(recorded, os.stat(os.path.join(second, "src/main.rs")).st_mtime_ns)
        # A third clone of the same commit reuses the second run's build, as CI means to.
        binary = os.path.join(self.env["CARGO_TARGET_DIR"], "debug", "probe")
        built = os.stat(binary).st_mtime_ns
        third = self.clone("third")
        self.assertEqual(self.ci_run(third), "two")
        self.assertEqual(os.stat(binary).st_mtime_ns, built, "the third run built again")


if __name__ == "__main__":
    unittest.main()
