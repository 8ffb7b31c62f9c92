#!/usr/bin/env python3
"""Seeded samples of whole streams from a split file, as the prompted-baseline run in docs/results.md used them.

usage: runtimes/sample-streams.py SPLIT.jsonl OUT_PREFIX [--targets 150] [--streams 40] [--seed 1]

Writes OUT_PREFIX-next.jsonl (streams in a seeded shuffle of the sorted (student, problem) keys, until at least
--targets next-step targets, i.e. rows with a predecessor) and OUT_PREFIX-streams.jsonl (the first --streams
streams of the same shuffle). Rows are copied unchanged.
"""
import argparse, json, random

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("split")
parser.add_argument("out_prefix")
parser.add_argument("--targets", type=int, default=150)
parser.add_argument("--streams", type=int, default=40)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

streams = {}
with open(args.split) as f:
    for line in f:
        row = json.loads(line)
        streams.setdefault((row["student"], row["problem"]), []).append(row)
keys = sorted(streams)
random.Random(args.seed).shuffle(keys)
chosen, targets = [], 0
for key in keys:
    if targets >= args.targets:
        break
    chosen.append(key)
    targets += len(streams[key]) - 1
for suffix, picked in [("next", chosen), ("streams", keys[: args.streams])]:
    with open(f"{args.out_prefix}-{suffix}.jsonl", "w") as out:
        out.writelines(json.dumps(row) + "\n" for key in picked for row in streams[key])
print(f"{len(chosen)} streams with {targets} next-step targets; {min(args.streams, len(keys))} streams for stream mode")
