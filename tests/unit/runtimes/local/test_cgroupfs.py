"""Finding cgroup hierarchies in mountinfo."""

from __future__ import annotations

from pathlib import Path

from cnai.runtimes.local.cgroupfs import Mount, lineage, mounts

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /nonexistent/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_v1_and_v2_hierarchies_are_found() -> None:
    found = mounts(MOUNTINFO)
    assert found == [
        Mount("/", Path("/sys/fs/cgroup/cpu,cpuacct"), 1, frozenset({"rw", "cpu", "cpuacct"})),
        Mount("/docker/abc", Path("/sys/fs/cgroup/memory"), 1, frozenset({"rw", "memory"})),
        Mount("/", Path("/nonexistent/unified"), 2, frozenset()),
    ]


def test_lineage_climbs_to_the_mount_point() -> None:
    mount = Mount("/", Path("/m"), 1, frozenset())
    assert lineage(Path("/m/a/b"), mount) == [Path("/m/a/b"), Path("/m/a"), Path("/m")]
