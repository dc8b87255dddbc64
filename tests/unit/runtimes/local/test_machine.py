"""This machine as a Node: name, capacity and GPUs."""

from __future__ import annotations

import pytest

from cnai.core.quantity import parse_quantity
from cnai.runtimes.local import LocalRuntime
from cnai.runtimes.local.machine import GPU, format_cpu, node_name, parse_nvidia_smi

pytestmark = pytest.mark.anyio


async def test_node_reports_real_capacity_and_the_enforcement_mode(
    runtime: LocalRuntime,
) -> None:
    info = await runtime.node()
    assert info.name == "test-node"
    assert parse_quantity(info.capacity["cpu"]) > 0
    assert parse_quantity(info.capacity["memory"]) > 2**20
    assert info.capacity["gpu"] == str(len(info.gpus))
    assert info.allocatable == info.capacity
    assert info.memory_enforcement == "rss"
    assert info.labels["kubernetes.io/hostname"] == "test-node"


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        pytest.param("vm", "vm", id="plain"),
        pytest.param("My_Box.example.lan", "my-box", id="short-lowercased-dns-label"),
        pytest.param("-weird--", "weird", id="no-leading-or-trailing-dash"),
        pytest.param("", "localhost", id="empty-falls-back"),
    ],
)
def test_node_name_is_a_dns_label(hostname: str, expected: str) -> None:
    assert node_name(hostname) == expected


def test_nvidia_smi_output_is_parsed() -> None:
    text = (
        "0, NVIDIA H200, GPU-aaaa, 143771\n"
        "1, NVIDIA H200, GPU-bbbb, 143771\n"
        "No devices were found\n"
    )
    assert parse_nvidia_smi(text) == [
        GPU(0, "NVIDIA H200", "GPU-aaaa", 143771 * 2**20),
        GPU(1, "NVIDIA H200", "GPU-bbbb", 143771 * 2**20),
    ]
    assert GPU(0, "A", "U", 5).to_status() == {
        "index": 0,
        "name": "A",
        "uuid": "U",
        "memoryBytes": 5,
    }


@pytest.mark.parametrize(
    ("millicores", "text"),
    [pytest.param(2000, "2", id="whole-cpus"), pytest.param(1500, "1500m", id="a-quota")],
)
def test_cpu_is_a_quantity(millicores: int, text: str) -> None:
    assert format_cpu(millicores) == text
