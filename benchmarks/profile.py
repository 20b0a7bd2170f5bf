"""python -m benchmarks.profile FILE [--top N] [--under FUNCTION]: a py-spy profile (collapsed stacks, as
``benchmarks.lifecycle --profile DIR`` writes them) as two lists: the share of samples in which each function is
on the stack (a function counted once per sample, however deep it recurses), and the share in which it is the
innermost frame (its self time). ``--under FUNCTION`` keeps only the samples that pass through that function.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (path/to/file.py:42)`` → ``function (to/file.py)``: short, and the same for every line."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    parts = pathlib.PurePath(match["file"]).parts
    return f"{match['function']} ({'/'.join(parts[-2:])})"


def read(path: pathlib.Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return samples


def summary(samples: list[tuple[list[str], int]], top: int) -> str:
    total = sum(count for _, count in samples)
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    for frames, count in samples:
        for name in set(frames):
            inclusive[name] += count
        self_time[frames[-1]] += count
    lines = [f"{total} samples", "on the stack:"]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["innermost (self):"]
    lines += [f"{100 * n / total:6.1f}%  {name}" for name, n in self_time.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=pathlib.Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--under", metavar="FUNCTION", help="only the samples with this function on the stack")
    args = parser.parse_args()
    samples = read(args.file)
    if args.under:
        samples = [(frames, count) for frames, count in samples
                   if any(f.split(" (")[0] == args.under for f in frames)]
    if not samples:
        raise SystemExit(f"{args.file}: no samples{' under ' + args.under if args.under else ''}")
    print(summary(samples, args.top))


if __name__ == "__main__":
    main()
