#!/usr/bin/env python3
"""The deploy artifacts, run as `sam local invoke` runs them (`make check-artifacts`).

For every function of template.yaml, its `bootstrap` in the `sam build` output runs under AWS's
Runtime Interface Emulator (the aws-lambda-rie that ships inside aws-sam-cli), through
qemu-aarch64-static when it is an arm64 binary, against the DynamoDB Local of
AWS_ENDPOINT_URL_DYNAMODB, seeded as `make run` seeds it (`apikeys create-table --if-absent`,
`apikeys seed-demo`). Every events/ file of that function is invoked, and the answer must carry
the status that tests/api/events.rs documents for it. It also checks that no bootstrap needs a
glibc newer than Amazon Linux 2023's (2.34), and that none links aws-lc (the functions' TLS is
rustls on ring: bench/README.md says why).

    tools/check-artifacts.py TEMPLATE BUILD_DIR EVENTS_DIR RIE CLI
"""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

GLIBC_MAX = (2, 34)  # Amazon Linux 2023 (provided.al2023)
AARCH64 = 0xB7
QEMU = "qemu-aarch64-static"
QEMU_SYSROOT = "/usr/aarch64-linux-gnu"
INIT_SECONDS = 120  # a first invocation under qemu, on a busy machine
INVOKE_SECONDS = 60
AWS_LC_MARK = b"/aws-lc/crypto/"


def die(msg):
    sys.exit(f"check-artifacts: {msg}")


def functions(template):
    """(logical id, binary) of each rust-cargolambda function."""
    text = template.read_text()
    found = re.findall(
        r"^  (\w+):\n    Type: AWS::Serverless::Function\n(?:    .*\n|\n)*?        Binary: ([\w-]+)$",
        text,
        re.M,
    )
    if not found:
        die(f"no function with a Binary in {template}")
    return found


def expected_statuses(events_rs):
    pairs = re.findall(r'\("([^"]+\.json)",\s*(\d{3})\)', events_rs.read_text())
    if not pairs:
        die(f"no (event, status) pairs in {events_rs}")
    return {name: int(status) for name, status in pairs}


def glibc_needed(binary):
    """The highest GLIBC_x.y symbol version the binary names (its .dynstr), or None."""
    versions = [
        tuple(int(p) for p in m.split(b".")) for m in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", binary.read_bytes())
    ]
    return max(versions) if versions else None


def links_aws_lc(binary):
    """Whether aws-lc is linked in: its C sources name their files in error reports, and those
    names stay in a stripped binary. The functions use rustls on ring (shared/src/client.rs)."""
    return AWS_LC_MARK in binary.read_bytes()


def static_checks(logical_id, boot):
    """The glibc and aws-lc checks of one bootstrap: a list of failures."""
    failures = []
    needed = glibc_needed(boot)
    if needed and needed > GLIBC_MAX:
        failures.append(f"{logical_id}: needs GLIBC_{'.'.join(map(str, needed))}, above Amazon Linux 2023's 2.34")
    shown = ".".join(map(str, needed or ())) or "none"
    print(f"check-artifacts: {logical_id}: highest glibc symbol version {shown} (limit 2.34)")
    if links_aws_lc(boot):
        failures.append(f"{logical_id}: links aws-lc; the functions' TLS is rustls on ring alone")
    return failures


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invoke(port, payload, timeout):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations",
        data=payload,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait_listening(port, proc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def main():
    if len(sys.argv) != 6:
        die(__doc__.strip().splitlines()[-1].strip())
    template, build, events, rie, cli = (pathlib.Path(a) for a in sys.argv[1:])
    root = template.resolve().parent
    expected = expected_statuses(root / "tests/api/events.rs")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or die(
        "run under tools/dynamodb-local.sh run (AWS_ENDPOINT_URL_DYNAMODB is not set)"
    )
    if not rie.is_file():
        die(f"{rie} is missing (aws-sam-cli ships it: make tools)")
    table = f"apikeys-artifacts-{os.getpid()}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "TABLE_NAME": table,
        "CURSOR_SECRET": "local-cursor-secret-for-make-run-only-0001",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
    }
    # Each function's own variables (IDEMPOTENCY_SECRET, GITHUB_SECRET_SCANNING_KEYS, ...), as
    # `sam local invoke --env-vars tools/sam-local-env.json` gives them; the table and the
    # endpoint stay this check's.
    local_env = json.loads((root / "tools/sam-local-env.json").read_text())
    # Seeded as `make run` seeds it.
    for args in (["create-table", "--if-absent"], ["--json", "seed-demo"]):
        subprocess.run([str(cli), *args], env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)

    failures, checked = [], 0
    # One emulator per function, all up at once: the events then run in the order
    # tests/api/events.rs runs them (sorted by name, against one seeded table), so a write
    # event changes what a later event sees exactly as it does there.
    running = {}  # binary -> (logical id, port, process, log, invoked)
    try:
        for logical_id, binary in functions(template):
            boot = build / logical_id / "bootstrap"
            if not boot.is_file():
                die(f"{boot} is missing: run make build first")
            failures += static_checks(logical_id, boot)
            arm64 = int.from_bytes(boot.read_bytes()[18:20], "little") == AARCH64
            command = [QEMU, "-L", QEMU_SYSROOT, str(boot.resolve())] if arm64 else [str(boot.resolve())]
            # Both of the emulator's ports chosen free: its Runtime API defaults to 9001.
            port, api_port = free_port(), free_port()
            log = open(build / f"{logical_id}.rie.log", "wb")
            proc = subprocess.Popen(
                [
                    str(rie),
                    "--runtime-interface-emulator-address",
                    f"127.0.0.1:{port}",
                    "--runtime-api-address",
                    f"127.0.0.1:{api_port}",
                    *command,
                ],
                env={**local_env.get(logical_id, {}), **env, "AWS_LAMBDA_FUNCTION_NAME": logical_id},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            running[binary] = [logical_id, port, proc, log, False]
            if not wait_listening(port, proc):
                die(f"{logical_id}: the emulator did not start (see {log.name})")
        names = sorted(n for n in os.listdir(events) if n.endswith(".json"))
        for binary, (logical_id, *_rest) in running.items():
            if not any(n.split(".", 1)[0] == binary for n in names):
                failures.append(f"{logical_id}: no events/{binary}.*.json to invoke it with")
        for name in names:
            binary = name.split(".", 1)[0]
            if binary not in running:
                failures.append(f"{name}: names no function of {template.name}")
                continue
            if name not in expected:
                failures.append(f"{name}: no status documented in tests/api/events.rs")
                continue
            fn = running[binary]
            logical_id, port, _, log, invoked = fn
            try:
                answer = invoke(port, (events / name).read_bytes(), INVOKE_SECONDS if invoked else INIT_SECONDS)
            except Exception as e:  # noqa: BLE001 - reported, with the log's name
                failures.append(f"{logical_id} {name}: no answer ({e}; see {log.name})")
                continue
            fn[4] = True
            status = answer.get("statusCode") if isinstance(answer, dict) else None
            # A scheduled run (expiry-notices) answers what it did: a complete run counts as
            # 200 (tests/api/events.rs).
            # A batch of the table's stream (publish-events) answers its failed records:
            # none counts as 200 too.
            if isinstance(answer, dict) and (
                answer.get("complete") is True or answer.get("batchItemFailures") == []
            ):
                status = 200
            checked += 1
            verdict = "ok" if status == expected[name] else "FAILED"
            print(f"check-artifacts: {logical_id} {name}: {status} (documented {expected[name]}) {verdict}")
            if status != expected[name]:
                failures.append(f"{logical_id} {name}: {status}, documented {expected[name]}: {json.dumps(answer)[:300]}")
    finally:
        for _, _, proc, log, _ in running.values():
            proc.terminate()
        for _, _, proc, log, _ in running.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    if failures:
        die("\n  " + "\n  ".join(failures))
    print(f"check-artifacts: {checked} events answered as documented, under the Runtime Interface Emulator")


if __name__ == "__main__":
    main()
