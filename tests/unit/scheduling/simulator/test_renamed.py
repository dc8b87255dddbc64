"""The simulator renames nodes as the FGD authors' simulator does before a run: node i
in name order gets the prefix ``"%04d-" % perm[i]`` of a seeded permutation, so ties
broken by name go to the first node of a random order fixed for the run."""

from __future__ import annotations

from cnai.scheduling.placement import NodeSpec
from cnai.scheduling.simulator.trace import renamed

NODES = [NodeSpec(f"node-{i:02d}", 1000 * (i + 1), 2048, 1, "T4") for i in range(20)]


def test_each_node_keeps_its_capacity_and_gets_a_distinct_permutation_prefix() -> None:
    out = renamed(list(reversed(NODES)), 42)
    by_old = {n.name.split("-", 1)[1]: n for n in out}
    assert sorted(by_old) == [n.name for n in NODES]
    for n in NODES:
        assert (by_old[n.name].cpu_milli, by_old[n.name].gpu_model) == (n.cpu_milli, "T4")
    assert sorted(int(n.name[:4]) for n in out) == list(range(len(NODES)))


def test_the_order_is_fixed_by_the_seed_and_differs_between_seeds() -> None:
    first = [min(renamed(NODES, seed), key=lambda n: n.name).name[5:] for seed in range(10)]
    assert first == [min(renamed(NODES, s), key=lambda n: n.name).name[5:] for s in range(10)]
    assert len(set(first)) > 1  # not always the same node first by name
    assert renamed(NODES, 3) == renamed(list(reversed(NODES)), 3)  # listing order is irrelevant
