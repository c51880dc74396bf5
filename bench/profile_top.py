"""Summarise a sampling profile (collapsed stacks, as `py-spy record -f raw` writes them).

Prints the top functions by own samples (where the CPU really was) and by inclusive samples
(what they called included), plus how the samples split between a few areas of interest.

    py-spy record -r 250 -f raw -o /tmp/sync.txt -- .venv/bin/python bench/targets.py --child \
        --base-url URL --data-dir DIR --concurrency 16
    .venv/bin/python bench/profile_top.py /tmp/sync.txt [--top 5]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Areas: first matching pattern on any frame of the stack wins (checked in this order).
AREAS = (
    ("imports", re.compile(r"<frozen importlib|_find_and_load|exec_module")),
    ("publish", re.compile(r"warehouse/publish\.py")),
    ("merges (warehouse)", re.compile(r"warehouse/(store|merge|flatten|fetch_state)\.py")),
    ("http client (httpx/aiohttp/httpcore)", re.compile(r"[(/](httpx|httpcore|aiohttp|httpx_aiohttp|h11|anyio|yarl|multidict)/")),
    ("json", re.compile(r"json_codec|[(/]json/")),
    ("idle worker threads", re.compile(r"futures/thread\.py:\d+\)$")),
    ("event loop", re.compile(r"asyncio/")),
)


def frame_name(frame: str) -> str:
    """`fn (path/to/module.py:123)` -> `fn (module.py)`, so lines of one function add up."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    name, path = match.groups()
    parts = Path(path).parts
    return f"{name} ({'/'.join(parts[-2:])})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collapsed", type=Path)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    own, inclusive, areas = Counter(), Counter(), Counter()
    total = 0
    for line in args.collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [frame_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
        area = next((a for a, pattern in AREAS if pattern.search(stack)), "other")  # first area that matches
        areas[area] += n
    print(f"{total} samples")
    print(f"\ntop {args.top} by own samples")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {args.top * 3} by inclusive samples")
    for name, n in inclusive.most_common(args.top * 3):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\nby area")
    for area, n in areas.most_common():
        print(f"  {100 * n / total:5.1f}%  {area}")


if __name__ == "__main__":
    main()
