"""Process trees from /proc, for the benchmarks that measure a server or a Ray cluster with its children."""

from __future__ import annotations

import os


def children_map() -> dict[int, list[int]]:
    """Parent pid -> the pids of its children, for every process visible in /proc."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids
