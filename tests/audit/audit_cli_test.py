"""`vlmserve audit verify` and `vlmserve audit find` on a real rotated, checkpointed log written by
audit_crash_writer: exit statuses, the first bad record named, truncation caught by the checkpoint
copy, trusted-key checks, and HMAC matching of candidate questions.

usage: audit_cli_test.py WRITER   (VLM_BIN names vlmserve)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = os.environ["VLM_BIN"]


def run(*args):
    result = subprocess.run([BIN, "audit", *map(str, args)], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok:", message.split("\n")[0])


def main():
    writer = sys.argv[1]
    work = Path(os.environ.get("VLM_TEST_DATA", "/tmp")) / "audit-cli"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chmod(work, 0o700)
    # A log with several rotations and checkpoints; SIGKILL, then a restart to repair any torn tail.
    proc = subprocess.Popen([writer, "write", str(work), "r", "2500", "4"], stdout=subprocess.PIPE)
    acked = 0
    for line in proc.stdout:
        acked += line.startswith(b"ACK ")
        if acked >= 40:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = subprocess.Popen([writer, "write", str(work), "s", "2500", "4"], stdout=subprocess.PIPE)
    proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    log, pub, copy, key = work / "log", work / "audit.key.ed25519.pub", work / "checkpoints.jsonl", work / "audit.key"
    files = sorted(log.glob("audit-*.jsonl")) + [log / "audit.jsonl"]
    check(len(files) >= 3, f"the log rotated ({len(files)} files)")

    rc, out = run("verify", log, "--public-key", pub, "--checkpoints", copy)
    check(rc == 0 and out.startswith("OK: ") and "checkpoint copies matched" in out, f"pristine log verifies\n{out}")
    rc, out = run("verify", *reversed(files), "--public-key", pub)
    check(rc == 0, f"files given in any order verify\n{out}")
    rc, out = run("verify", log)
    check(rc == 0 and "no trusted public key" in out, f"without --public-key a note says what was not proven\n{out}")

    tampered = work / "tampered"
    shutil.copytree(log, tampered)
    target = tampered / files[1].name
    lines = target.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"client":"crash-test"', b'"client":"crash-tesT"')
    target.write_bytes(b"\n".join(lines))
    rc, out = run("verify", tampered, "--public-key", pub)
    check(rc == 1 and out.startswith(f"FAIL: {target} line 3"), f"a changed byte names its file and line\n{out}")

    other = work / "other"
    other.mkdir(mode=0o700)
    (other / "audit.key.ed25519.pub").write_text("11" * 32 + "\n")
    rc, out = run("verify", log, "--public-key", other / "audit.key.ed25519.pub")
    check(rc == 1 and "not by the trusted key" in out, f"another key's checkpoints are refused\n{out}")

    # Truncate behind the newest signed checkpoint kept elsewhere: drop that checkpoint and all after it.
    newest = max(json.loads(line)["tree_size"] for line in copy.read_text().splitlines())
    cut = work / "cut"
    cut.mkdir(mode=0o700)
    for path in files:
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["seq"] < newest]
        if kept:
            (cut / path.name).write_text("\n".join(kept) + "\n")
    rc, out = run("verify", cut, "--public-key", pub)
    check(rc == 0, f"a truncated log alone still chains (the tail is simply gone)\n{out}")
    rc, out = run("verify", cut, "--public-key", pub, "--checkpoints", copy)
    check(rc == 1 and "log is truncated" in out, f"the checkpoint copy catches the truncation\n{out}")

    rc, out = run("find", log, "--id", "r-7", "--audit-key-file", key, "--question", "question 7")
    check(rc == 0 and '"request_id": "r-7"' in out and "matches" in out, f"find shows the record, question matches\n{out}")
    rc, out = run("find", log, "--id", "r-7", "--audit-key-file", key, "--question", "question 8")
    check(rc == 1 and "DOES NOT MATCH" in out, f"a wrong candidate question does not match\n{out}")
    rc, out = run("find", log, "--id", "no-such-request")
    check(rc == 1, f"an unknown id is reported\n{out}")
    rc, out = run("verify", work / "missing.jsonl")
    check(rc == 1 and "does not exist" in out, f"a missing file fails verification\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
