#!/usr/bin/env bash
# A syscall profile of a function's init, as the cold-start benchmark starts it: the TLS front,
# the run's CA, the CPU levels (bench/README.md, "Profile of init").
#
#   bench/profile-init.sh HARNESS BIN_DIR OUT_FILE [FUNCTION]
#   (make bench-profile: OUT_FILE is bench/results/init-profile.md)
#
# Runs `HARNESS --smoke --coldstart-only` (one cold start per subject and level) under
# DynamoDB Local with FUNCTION (default get-key) replaced by `strace -f` of itself, then
# writes to OUT_FILE, for the first cold start at full CPU, the syscalls made before the
# function first asks the runtime API for an invocation (that is, its init), by count and by
# time spent. strace slows every syscall down, so its durations are not init's; the counts
# and what is read from disk are the point. OUT_FILE is this script's output, as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 4p "$0" >&2; exit 2; }
harness=$1 bin_dir=$(realpath "$2") out_file=$(realpath -m "$3") fn=${4:-get-key}
command -v strace >/dev/null || { echo "profile-init: strace is not installed" >&2; exit 1; }

wrap=$(mktemp -d) out=$(mktemp -d)
trap 'rm -rf "$wrap" "$out"' EXIT
for b in "$bin_dir"/*; do [ -x "$b" ] && [ -f "$b" ] && ln -s "$b" "$wrap/"; done
rm -f "$wrap/$fn"
# The harness stops a function with SIGKILL: strace runs in a session of its own, so that it
# outlives the shell the harness kills, and finishes its trace when the function exits (the
# function exits once the harness's runtime API is gone).
cat >"$wrap/$fn" <<EOF
#!/usr/bin/env bash
setsid strace -f -ttt -T -s 120 -o "$out/strace.\$\$" "$bin_dir/$fn" &
wait
EOF
chmod +x "$wrap/$fn"

tools/dynamodb-local.sh run "$harness" --smoke --coldstart-only --bin-dir "$wrap" \
  --out "$out" >"$out/harness.log" 2>&1
sleep 2
# The first trace is the harness recording the function's calls for its own floor (plain
# HTTP); the second is the first cold start, at full CPU, through the TLS front.
first=$(for f in "$out"/strace.*; do echo "$(head -1 "$f" | cut -d' ' -f2-3) $f"; done | sort -n | sed -n 2p | cut -d' ' -f3)
{
echo "# Init profile of $fn (strace, under the cold-start harness)"
echo
echo "Written by \`bench/profile-init.sh\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)): the first cold start of $fn at full CPU, through the TLS front, up to its first \`invocation/next\`. Durations are under strace."
echo
python3 - "$first" <<'EOF'
import collections, re, sys

lines = open(sys.argv[1]).read().splitlines()
start = float(lines[0].split()[1])
calls, spent, end, reads, marks = collections.Counter(), collections.Counter(), None, [], []
for line in lines:
    m = re.match(r"(\d+) +(\d+\.\d+) (\w+)\((.*?)(?:<(\d+\.\d+)>)?$", line)
    if not m:
        continue
    _, at, name, args, took = m.groups()
    if name in ("write", "sendto", "writev") and "invocation/next" in args:
        end = float(at)
        break
    if name in ("connect", "clone3", "execve"):
        marks.append(f"{name} at {(float(at) - start) * 1000:.1f} ms")
    calls[name] += 1
    spent[name] += float(took or 0)
    if name == "openat" and "= -1" not in line:
        reads.append(re.search(r'"([^"]*)"', args).group(1))
print(f"init: {(end - start) * 1000:.1f} ms under strace, {sum(calls.values())} syscalls")
print()
print("| syscall | calls | time in it (ms, under strace) |")
print("| --- | --- | --- |")
for name, n in calls.most_common():
    print(f"| {name} | {n} | {spent[name] * 1000:.2f} |")
print()
print("Files opened:", ", ".join(reads))
print()
print("Timeline:", "; ".join(marks), f"; asks for its first invocation at {(end - start) * 1000:.1f} ms")
EOF
} >"$out_file"
echo "profile-init: wrote $out_file from the trace of the first cold start" >&2
