#!/usr/bin/env python3
"""After `sam build`: every function that template.yaml names has an arm64 `bootstrap`."""
import pathlib
import re
import sys

template, build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
# Function resources: a two-space-indented logical id followed by the serverless type.
names = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function$", template.read_text(), re.M)
if not names:
    sys.exit(f"build: no AWS::Serverless::Function in {template}")
AARCH64 = 0xB7  # ELF e_machine
for name in names:
    boot = build / name / "bootstrap"
    if not boot.is_file():
        sys.exit(f"build: {boot} is missing")
    head = boot.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != AARCH64:
        sys.exit(f"build: {boot} is not an arm64 executable")
print(f"build: arm64 bootstrap for {', '.join(names)}, in {build}")
