"""bench_florence2 --profile on the CPU: the decode step profile's tables for greedy and 3 beams.

On the tiny random checkpoint the benchmark's smoke run built (florence2_bench fixture), a few steps
each: every table comes out non-empty, its rows add up to its total and its shares to 100%, the op
table counts the decoder's GEMMs that config.json implies (six per layer and the LM head), and the
per-part table holds the same time split over every decoder part. Bad --profile use is refused.

  python tests/integration/test_florence2_profile.py --bench build/auto/bench/florence2/bench_florence2
"""

import argparse
import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VLM_TEST_DATA", ROOT / "build" / "test-data"))
MODEL = DATA / "florence2_bench" / "tiny_native"
PHOTO = Path(os.environ.get("VLM_ASSETS", ROOT / ".." / "shared" / "assets")) / "images" / "dog.jpg"
BENCH = None
STEPS = 3
PARTS = {"decoder.embed", "decoder.self_attention", "decoder.cross_attention", "decoder.feed_forward",
         "decoder.lm_head", "outside the decoder (logits processing, search, cache reorder)"}
ROW = re.compile(r"^(.*?)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d)%$")


def run_bench(*extra):
    return subprocess.run([BENCH, "--model", str(MODEL), "--images", str(PHOTO), "--mode", "decoder-step",
                           "--cache-length", "4", "--warmup", "1", *extra], capture_output=True, text=True, timeout=120)


def tables(text):
    """{title: (rows [(name, calls, us, share)], total (calls, us))} of every '-- title' table."""
    found, title, rows = {}, None, None
    for line in text.splitlines():
        if line.startswith("-- "):
            title, rows = line[3:], None
        elif title is not None and rows is None and line.endswith("share"):
            rows = []
        elif rows is not None and (m := ROW.match(line)):
            name, calls, us, share = m.group(1).strip(), float(m.group(2)), float(m.group(3)), float(m.group(4))
            if name == "total":
                found[title] = (rows, (calls, us))
                title, rows = None, None
            else:
                rows.append((name, calls, us, share))
    return found


class ProfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        config = json.loads((MODEL / "config.json").read_text())
        cls.layers = config["text_config"]["decoder_layers"]
        cls.outputs = {}
        for beams in (1, 3):
            proc = run_bench("--num-beams", str(beams), "--profile", str(STEPS))
            if proc.returncode != 0:
                raise AssertionError(f"bench_florence2 --profile exited {proc.returncode}: {proc.stderr[-2000:]}")
            cls.outputs[beams] = proc.stdout

    def test_header_and_wall_times(self):
        for beams, text in self.outputs.items():
            with self.subTest(beams=beams):
                self.assertIn(f"cpu fp32, attention eager, batch 1 x {beams} beam(s) = {beams} rows, 4 cached "
                              f"positions, {STEPS} steps per run", text)
                wall = re.search(r"graph replay - \(CUDA only\), eager (\d+\.\d+) ms", text)
                self.assertIsNotNone(wall, text)
                self.assertGreater(float(wall.group(1)), 0)

    def test_tables_add_up(self):
        for beams, text in self.outputs.items():
            found = tables(text)
            self.assertEqual(set(found), {"eager", "eager, by decoder part"}, text)
            for title, (rows, (calls, us)) in found.items():
                with self.subTest(beams=beams, table=title):
                    self.assertTrue(rows)
                    self.assertGreater(us, 0)
                    # Each printed share is rounded to 0.1%, each time and count to 0.01.
                    self.assertAlmostEqual(sum(r[3] for r in rows), 100.0, delta=0.05 * len(rows) + 1e-6)
                    self.assertAlmostEqual(sum(r[2] for r in rows), us, delta=0.005 * len(rows) + 0.005)
                    self.assertAlmostEqual(sum(r[1] for r in rows), calls, delta=0.005 * len(rows) + 0.005)
                    for name, row_calls, row_us, share in rows:
                        self.assertAlmostEqual(share, 100.0 * row_us / us, delta=0.051, msg=name)
            # The parts split the same op time and op calls.
            for ops, parts in zip(found["eager"][1], found["eager, by decoder part"][1]):
                self.assertAlmostEqual(ops, parts, delta=0.011)

    def test_op_table_counts_the_decoder_gemms(self):
        for beams, text in self.outputs.items():
            with self.subTest(beams=beams):
                ops = {name: calls for name, calls, _, _ in tables(text)["eager"][0]}
                # self QKV, self out, cross Q, cross out, fc1, fc2 per layer, and the tied LM head.
                self.assertEqual(ops.get("aten::linear"), 6 * self.layers + 1, text)

    def test_every_decoder_part_has_time(self):
        for beams, text in self.outputs.items():
            with self.subTest(beams=beams):
                parts = {name: (calls, us) for name, calls, us, _ in tables(text)["eager, by decoder part"][0]}
                self.assertEqual(set(parts), PARTS, text)
                for name, (calls, us) in parts.items():
                    self.assertGreater(calls, 0, name)
                    self.assertGreater(us, 0, name)

    def test_bad_profile_use_is_refused(self):
        for extra, message in [(["--profile", "0"], "--profile needs an integer >= 1, got '0'"),
                               (["--profile", "x"], "--profile needs an integer >= 1, got 'x'"),
                               (["--profile", "2", "--mode", "vision"], "--profile needs --mode decoder-step")]:
            with self.subTest(extra=extra):
                proc = run_bench(*extra)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertEqual(proc.stdout, "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True, help="the bench_florence2 binary")
    args, rest = parser.parse_known_args()
    BENCH = args.bench
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
