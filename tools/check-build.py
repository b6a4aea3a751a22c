#!/usr/bin/env python3
"""After `sam build`: every function that template.yaml names has an arm64 `bootstrap`, and
none holds the demo organization's public secrets (demo/src/lib.rs)."""
import pathlib
import re
import sys

template, build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
# Function resources: a two-space-indented logical id followed by the serverless type.
names = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function$", template.read_text(), re.M)
if not names:
    sys.exit(f"build: no AWS::Serverless::Function in {template}")
AARCH64 = 0xB7  # ELF e_machine
# What only the demo's secrets contain: the bytes they are made of, and the admin's secret.
demo = (template.parent / "demo" / "src" / "lib.rs").read_text()
admin = re.search(r'pub const ADMIN_SECRET: &str = "(apk_[A-Za-z0-9_-]+)";', demo)
if not admin:
    sys.exit("build: no ADMIN_SECRET in demo/src/lib.rs")
DEMO_MARKERS = [b"apikeys-local-demo-", admin.group(1).encode()]
for name in names:
    boot = build / name / "bootstrap"
    if not boot.is_file():
        sys.exit(f"build: {boot} is missing")
    head = boot.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != AARCH64:
        sys.exit(f"build: {boot} is not an arm64 executable")
    body = boot.read_bytes()
    for marker in DEMO_MARKERS:
        if marker in body:
            sys.exit(f"build: {boot} contains a demo secret ({marker.decode()!r})")
print(f"build: arm64 bootstrap for {', '.join(names)}, without demo secrets, in {build}")
