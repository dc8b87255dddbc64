"""The `cnai` command against a real platform: apply, get, describe, delete, create.

Most cases run the CLI in-process through Typer's CliRunner (with CNAI_HOME pointing at
the session platform); a few run `python -m cnai` as a real subprocess. Every test uses
its own namespace, since the platform is shared by the whole session.
"""

from __future__ import annotations

import base64
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from harness import RunningPlatform, wait_until
from typer.testing import CliRunner
from workloads import JobBuilder, marker

from cnai import Client
from cnai.cli.errors import run_cli
from cnai.cli.main import app
from cnai.core.errors import NotFound
from cnai.core.kinds import Event, EventSource, EventType, Namespace, ObjectReference, Secret
from cnai.core.meta import ObjectMeta, OwnerReference, now
from cnai.scheduling.api import PodSet, Workload, WorkloadSpec

PLAIN = "s3cr3t-do-not-print"
ENCODED = base64.b64encode(PLAIN.encode()).decode()
WATCH_DEADLINE_S = 30.0


@dataclass(frozen=True)
class Ran:
    """What one CLI run printed and returned."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cnai(platform: RunningPlatform, *args: str, stdin: str | None = None, **env: str) -> Ran:
    """Run the CLI in-process, as `cnai ARGS` would with CNAI_HOME=platform.home."""
    base: dict[str, str | None] = {
        "CNAI_HOME": str(platform.home),
        **dict.fromkeys(("CNAI_CONFIG", "CNAI_SERVER", "CNAI_TOKEN", "CNAI_NAMESPACE")),
    }
    runner = CliRunner(env={**base, **env})
    with runner.isolation(input=stdin) as (out, err, _):
        code = run_cli(app, list(args))
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def cnai_process(platform: RunningPlatform, *args: str, stdin: str = "") -> Ran:
    proc = subprocess.run(
        [sys.executable, "-m", "cnai", *args],
        env=platform.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def ns(client: Client) -> str:
    """A fresh namespace for one test."""
    return client.create(Namespace.new(unique("cli"))).metadata.name


def write(path: Path, *docs: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump_all(docs))
    return path


def secret_doc(name: str, ns: str | None = None, **data: str) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Secret",
        "metadata": meta,
        "stringData": data,
    }


# -- apply -----------------------------------------------------------------------------


def test_apply_directory_creates_then_unchanged_then_configured(
    platform: RunningPlatform, client: Client, tmp_path: Path
) -> None:
    name = unique("applied")
    ns_doc = {"apiVersion": "cnai.io/v1alpha1", "kind": "Namespace", "metadata": {"name": name}}
    write(tmp_path / "a.yaml", ns_doc, secret_doc("db", name, password="one"))
    write(tmp_path / "b.yml", secret_doc("api", name, key="k"))
    (tmp_path / "notes.txt").write_text("not a manifest: {")

    first = cnai(platform, "apply", "-f", str(tmp_path))
    assert first.code == 0, first.err
    assert first.lines == [f"namespace/{name} created", "secret/db created", "secret/api created"]
    again = cnai(platform, "apply", "-f", str(tmp_path))
    assert again.lines == [
        f"namespace/{name} unchanged",
        "secret/db unchanged",
        "secret/api unchanged",
    ]

    # A label and a data change; the manifest's status must not overwrite the live one.
    changed_ns = {**ns_doc, "metadata": {"name": name, "labels": {"team": "ml"}}}
    write(
        tmp_path / "a.yaml",
        {**changed_ns, "status": {"phase": "Terminating"}},
        secret_doc("db", name, password="two"),
    )
    third = cnai(platform, "apply", "-f", str(tmp_path))
    assert third.lines == [
        f"namespace/{name} configured",
        "secret/db configured",
        "secret/api unchanged",
    ]
    live = client.get(Namespace, name)
    assert live.metadata.labels == {"team": "ml"}
    assert live.status.phase == "Active"
    assert client.get(Secret, "db", name).decoded() == {"password": "two"}


def test_apply_from_stdin_uses_n_for_objects_without_a_namespace(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    text = yaml.safe_dump_all([secret_doc("from-stdin", a="1"), secret_doc("second", b="2")])
    ran = cnai(platform, "apply", "-f", "-", "-n", ns, stdin=text)
    assert ran.code == 0, ran.err
    assert ran.lines == ["secret/from-stdin created", "secret/second created"]
    assert client.get(Secret, "second", ns).decoded() == {"b": "2"}


def test_apply_refuses_a_manifest_namespace_that_contradicts_n(
    platform: RunningPlatform, ns: str
) -> None:
    text = yaml.safe_dump(secret_doc("elsewhere", "default", a="1"))
    ran = cnai(platform, "apply", "-f", "-", "-n", ns, stdin=text)
    assert ran.code == 1
    assert "does not match the namespace" in ran.err


def test_apply_reports_an_invalid_object_and_goes_on(platform: RunningPlatform, ns: str) -> None:
    text = yaml.safe_dump_all([secret_doc("Bad_Name", a="1"), secret_doc("good", a="1")])
    ran = cnai(platform, "apply", "-f", "-", "-n", ns, stdin=text)
    assert ran.code == 1
    assert ran.lines == ["secret/good created"]
    assert "error:" in ran.err
    assert "metadata.name" in ran.err


def test_apply_from_stdin_in_a_real_process(platform: RunningPlatform, ns: str) -> None:
    ran = cnai_process(
        platform, "apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(secret_doc("p", a="1"))
    )
    assert (ran.code, ran.out) == (0, "secret/p created\n"), ran.err


# -- get -------------------------------------------------------------------------------


def make_secret(client: Client, name: str, ns: str, labels: dict[str, str], keys: int) -> None:
    meta = ObjectMeta(name=name, namespace=ns, labels=labels)
    client.create(Secret(metadata=meta, data={f"k{i}": ENCODED for i in range(keys)}))


@pytest.fixture
def two_secrets(client: Client, ns: str) -> str:
    """Namespace with secrets alpha (2 keys, tier=db) and beta (1 key, tier=web)."""
    make_secret(client, "alpha", ns, {"tier": "db"}, 2)
    make_secret(client, "beta", ns, {"tier": "web"}, 1)
    return ns


@pytest.mark.parametrize("kind", ["secret", "secrets", "Secret"])
def test_get_table_by_any_kind_name(platform: RunningPlatform, two_secrets: str, kind: str) -> None:
    ran = cnai(platform, "get", kind, "-n", two_secrets)
    assert ran.code == 0, ran.err
    header, alpha, beta = ran.lines
    assert header.split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert header.startswith("NAME    TYPE     DATA   AGE")  # padded with 3 spaces
    assert alpha.split()[:3] == ["alpha", "Opaque", "2"]
    assert beta.split()[:3] == ["beta", "Opaque", "1"]


def test_get_namespace_by_short_name_and_wide(platform: RunningPlatform, ns: str) -> None:
    ran = cnai(platform, "get", "ns", ns, "-o", "wide")
    assert ran.code == 0, ran.err
    assert [line.split()[:2] for line in ran.lines] == [["NAME", "STATUS"], [ns, "Active"]]


def test_get_all_namespaces_with_selector(
    platform: RunningPlatform, client: Client, two_secrets: str
) -> None:
    other = client.create(Namespace.new(unique("cli-other"))).metadata.name
    label = unique("run")
    make_secret(client, "gamma", two_secrets, {"run": label}, 1)
    make_secret(client, "delta", other, {"run": label}, 3)
    ran = cnai(platform, "get", "secrets", "-A", "-l", f"run={label}")
    assert ran.code == 0, ran.err
    rows = [line.split()[:4] for line in ran.lines]
    assert rows[0] == ["NAMESPACE", "NAME", "TYPE", "DATA"]
    assert sorted(rows[1:]) == sorted(
        [[two_secrets, "gamma", "Opaque", "1"], [other, "delta", "Opaque", "3"]]
    )


def test_get_selector_in_one_namespace(platform: RunningPlatform, two_secrets: str) -> None:
    ran = cnai(platform, "get", "secrets", "-n", two_secrets, "-l", "tier=web", "-o", "name")
    assert (ran.code, ran.out) == (0, "secret/beta\n")


def test_get_yaml_of_one_object_and_json_list(platform: RunningPlatform, two_secrets: str) -> None:
    one = yaml.safe_load(
        cnai(platform, "get", "secret", "alpha", "-n", two_secrets, "-o", "yaml").out
    )
    assert (one["kind"], one["metadata"]["name"]) == ("Secret", "alpha")
    assert sorted(one["data"]) == ["k0", "k1"]
    listed = json.loads(cnai(platform, "get", "secrets", "-n", two_secrets, "-o", "json").out)
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["alpha", "beta"]


def test_get_empty_namespace_says_so_on_stderr(platform: RunningPlatform, ns: str) -> None:
    ran = cnai(platform, "get", "secrets", "-n", ns)
    assert (ran.code, ran.out) == (0, "")
    assert ran.err.strip() == f"No resources found in {ns} namespace."


def test_get_uses_the_config_namespace_by_default(
    platform: RunningPlatform, ns: str, client: Client
) -> None:
    make_secret(client, "here", ns, {}, 1)
    ran = cnai(platform, "get", "secrets", "-o", "name", CNAI_NAMESPACE=ns)
    assert ran.out == "secret/here\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ["get", "flurbs"],
            1,
            'the server doesn\'t have a resource type "flurbs"',
            id="unknown-kind",
        ),
        pytest.param(["get", "secret", "nope"], 1, "not found", id="missing-object"),
        pytest.param(["get", "secrets", "-o", "xml"], 2, "Invalid value for '-o'", id="bad-output"),
        pytest.param(["get", "secrets", "--bogus"], 2, "No such option", id="bad-flag"),
        pytest.param(["delete", "secret"], 2, "at least one NAME", id="delete-without-name"),
        pytest.param(["apply"], 2, "-f/--filename", id="apply-without-file"),
    ],
)
def test_errors_are_one_clear_line(
    platform: RunningPlatform, args: list[str], code: int, message: str
) -> None:
    ran = cnai(platform, *args)
    assert ran.code == code
    assert message in ran.err
    assert "Traceback" not in ran.err


def test_unknown_kind_in_a_real_process(platform: RunningPlatform) -> None:
    ran = cnai_process(platform, "get", "flurbs")
    assert ran.code == 1
    assert ran.err.strip() == 'error: the server doesn\'t have a resource type "flurbs"'


def test_watch_prints_objects_created_after_the_list(
    platform: RunningPlatform, client: Client, ns: str, tmp_path: Path
) -> None:
    make_secret(client, "before", ns, {}, 1)
    lines: queue.Queue[str] = queue.Queue()
    stderr_path = tmp_path / "watch.err"
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "cnai", "get", "secrets", "-n", ns, "-w"],
            env={**platform.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as proc,
    ):
        stdout = proc.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True)
        reader.start()
        try:
            seen = read_until(lines, "before")  # the list is printed: the watch starts from it
            assert seen[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
            make_secret(client, "after", ns, {}, 2)
            # Only the new object: resuming from the list's version replays nothing.
            rows = [line.split()[:3] for line in read_until(lines, "after")]
            assert rows == [["after", "Opaque", "2"]]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
            reader.join(timeout=30)
    assert proc.returncode == 0, stderr_path.read_text()


def read_until(lines: queue.Queue[str], needle: str) -> list[str]:
    """Lines up to and including the first containing ``needle`` (bounded wait)."""
    seen: list[str] = []
    deadline = time.monotonic() + WATCH_DEADLINE_S
    while not seen or needle not in seen[-1]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{needle!r} not printed; got {seen}")
        try:
            seen.append(lines.get(timeout=remaining))
        except queue.Empty:
            continue
    return seen


# -- describe --------------------------------------------------------------------------


def record_event(
    client: Client, about: Namespace | Secret, ns: str, reason: str, message: str
) -> None:
    ref = ObjectReference(
        kind=about.kind,
        name=about.metadata.name,
        namespace=about.metadata.namespace,
        uid=about.metadata.uid,
    )
    when = now()
    client.create(
        Event(
            metadata=ObjectMeta(name=unique("ev"), namespace=ns),
            involved_object=ref,
            reason=reason,
            message=message,
            type=EventType.WARNING,
            source=EventSource(component="cli-test"),
            first_timestamp=when,
            last_timestamp=when,
        )
    )


def test_describe_lists_the_objects_events(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    make_secret(client, "db", ns, {"app": "web"}, 1)
    make_secret(client, "other", ns, {}, 1)
    record_event(client, client.get(Secret, "db", ns), ns, "Rotated", "password rotated by test")
    record_event(client, client.get(Secret, "other", ns), ns, "Ignored", "about another object")
    ran = cnai(platform, "describe", "secret", "db", "-n", ns)
    assert ran.code == 0, ran.err
    assert ran.lines[:3] == ["Name:         db", f"Namespace:    {ns}", "Labels:       app=web"]
    events = ran.lines[ran.lines.index("Events:") + 1 :]
    assert events[0].split() == ["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]
    assert len(events) == 2
    assert events[1].split()[:2] == ["Warning", "Rotated"]
    assert events[1].endswith("cli-test   password rotated by test")


def test_describe_cluster_scoped_object_finds_events_in_default(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    record_event(client, client.get(Namespace, ns), "default", "Labelled", f"{ns} was labelled")
    ran = cnai(platform, "describe", "ns", ns)
    assert ran.code == 0, ran.err
    assert "Status:" in ran.lines
    assert "  phase: Active" in ran.lines
    assert ran.lines[-1].endswith(f"{ns} was labelled")


def test_describe_without_events_says_none(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    make_secret(client, "quiet", ns, {}, 1)
    assert (
        cnai(platform, "describe", "secrets", "quiet", "-n", ns).lines[-1] == "Events:       <none>"
    )


def test_describe_workload_shows_its_live_position_in_its_queue(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    """Positions are not stored (they move with every admission): describe computes
    them now, in the scheduler's order (priority, then first come)."""

    def workload(name: str, priority: int) -> Workload:
        # More cpu than any machine offers: it stays pending.
        huge = PodSet(name="main", count=1, requests={"cpu": "100000"})
        spec = WorkloadSpec(queue_name="default", priority=priority, pod_sets=[huge])
        return Workload(metadata=ObjectMeta(name=name, namespace=ns), spec=spec)

    client.create(workload("early", 0))
    client.create(workload("urgent", 5))
    client.create(workload("late", 0))
    for name, position in [("urgent", 1), ("early", 2), ("late", 3)]:
        ran = cnai(platform, "describe", "workload", name, "-n", ns)
        assert ran.code == 0, ran.err
        assert f"Position:     {position} in queue default" in ran.lines, ran.out
    make_secret(client, "x", ns, {}, 1)
    ran = cnai(platform, "describe", "secret", "x", "-n", ns)
    assert not any(line.startswith("Position:") for line in ran.lines)


def test_describe_pending_job_shows_its_workloads_position(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    """A pending Job says why it waits in its status; describe adds where its Workload
    stands in the queue now."""
    job = JobBuilder("big", ns).runs("pass", marker())
    job.pod.spec["resources"] = {"requests": {"cpu": "100000"}}  # never fits
    client.create(job.build())
    wait_until(
        lambda: any(w.metadata.name == "big" for w in client.list(Workload, ns).items),
        WATCH_DEADLINE_S,
        "the job's workload",
    )
    ran = cnai(platform, "describe", "job", "big", "-n", ns)
    assert ran.code == 0, ran.err
    assert "Position:     1 in queue default" in ran.lines, ran.out


# -- delete ----------------------------------------------------------------------------


def test_delete_by_name_and_not_found(
    platform: RunningPlatform, two_secrets: str, client: Client
) -> None:
    ran = cnai(platform, "delete", "secret", "alpha", "missing", "beta", "-n", two_secrets)
    assert ran.code == 1
    assert ran.lines == ['secret "alpha" deleted', 'secret "beta" deleted']
    assert "error:" in ran.err
    assert "'missing' not found" in ran.err
    assert client.list(Secret, two_secrets).items == []
    assert (
        cnai(platform, "delete", "secret", "missing", "-n", two_secrets, "--ignore-not-found").code
        == 0
    )


def test_delete_from_file_and_finalizers_mark_for_deletion(
    platform: RunningPlatform, client: Client, tmp_path: Path
) -> None:
    name = unique("doomed")
    ns_doc = {"apiVersion": "cnai.io/v1alpha1", "kind": "Namespace", "metadata": {"name": name}}
    path = write(tmp_path / "m.yaml", secret_doc("s", name, a="1"), ns_doc)
    assert cnai(platform, "apply", "-f", str(path)).code == 1  # the namespace comes second
    assert cnai(platform, "apply", "-f", str(path)).code == 0
    ran = cnai(platform, "delete", "-f", str(path))
    assert ran.code == 0, ran.err
    # Namespaces keep a finalizer until their contents are gone.
    assert ran.lines == ['secret "s" deleted', f'namespace "{name}" marked for deletion']


def owner_and_child(client: Client, ns: str) -> str:
    """Secret ``owner`` and secret ``child`` owned by it (blocking); returns owner's uid."""
    owner = client.create(Secret(metadata=ObjectMeta(name="owner", namespace=ns)))
    uid = owner.metadata.uid
    assert uid
    ref = OwnerReference(kind="Secret", name="owner", uid=uid, block_owner_deletion=True)
    client.create(Secret(metadata=ObjectMeta(name="child", namespace=ns, owner_references=[ref])))
    return uid


def wait_gone(client: Client, name: str, ns: str) -> None:
    deadline = time.monotonic() + WATCH_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            client.get(Secret, name, ns)
        except NotFound:
            return
        time.sleep(0.05)
    raise AssertionError(f"secret {name} was not deleted")


@pytest.mark.parametrize(
    ("cascade", "line"),
    [
        pytest.param([], 'secret "owner" deleted', id="default-is-background"),
        pytest.param(["--cascade=background"], 'secret "owner" deleted', id="background"),
        pytest.param(
            ["--cascade", "foreground"], 'secret "owner" marked for deletion', id="foreground"
        ),
    ],
)
def test_delete_cascades_to_dependents(
    platform: RunningPlatform, client: Client, ns: str, cascade: list[str], line: str
) -> None:
    owner_and_child(client, ns)
    ran = cnai(platform, "delete", "secret", "owner", "-n", ns, *cascade)
    assert ran.code == 0, ran.err
    assert ran.lines == [line]
    wait_gone(client, "child", ns)
    wait_gone(client, "owner", ns)


def test_delete_cascade_orphan_keeps_dependents(
    platform: RunningPlatform, client: Client, ns: str
) -> None:
    owner_and_child(client, ns)
    ran = cnai(platform, "delete", "secret", "owner", "-n", ns, "--cascade=orphan")
    assert ran.code == 0, ran.err
    assert ran.lines == ['secret "owner" marked for deletion']
    wait_gone(client, "owner", ns)
    assert client.get(Secret, "child", ns).metadata.owner_references == []


def test_delete_cascade_refuses_an_unknown_value(platform: RunningPlatform, ns: str) -> None:
    ran = cnai(platform, "delete", "secret", "x", "-n", ns, "--cascade=sideways")
    assert ran.code == 2
    assert "--cascade" in ran.err


# -- create ----------------------------------------------------------------------------


def test_create_namespace_and_secret(
    platform: RunningPlatform, client: Client, tmp_path: Path
) -> None:
    name = unique("made")
    assert cnai(platform, "create", "namespace", name).lines == [f"namespace/{name} created"]
    (tmp_path / "tls.key").write_bytes(b"\x00key-bytes")
    ran = cnai(
        platform,
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        name,
        "--from-literal",
        f"password={PLAIN}",
        "--from-literal",
        "user=admin",
        "--from-file",
        str(tmp_path / "tls.key"),
        "--from-file",
        f"renamed={tmp_path / 'tls.key'}",
    )
    assert (ran.code, ran.lines) == (0, ["secret/creds created"]), ran.err
    made = client.get(Secret, "creds", name)
    assert made.decoded()["password"] == PLAIN
    assert base64.b64decode(made.data["renamed"]) == b"\x00key-bytes"
    assert sorted(made.data) == ["password", "renamed", "tls.key", "user"]
    assert cnai(platform, "create", "namespace", name).code == 1  # already exists


def test_namespace_token_is_confined_to_its_namespace(
    platform: RunningPlatform, client: Client, two_secrets: str
) -> None:
    created = cnai(platform, "create", "token", "--namespace", two_secrets, "--description", "ci")
    assert created.code == 0, created.err
    token = created.out.strip()
    assert token.startswith("cnai_")
    assert len(created.lines) == 1
    assert "CNAI_TOKEN=" in created.err
    own = cnai(platform, "get", "secrets", "-n", two_secrets, "-o", "name", CNAI_TOKEN=token)
    assert own.lines == ["secret/alpha", "secret/beta"]
    other = cnai(platform, "get", "secrets", "-n", "default", CNAI_TOKEN=token)
    assert other.code == 1
    assert other.err.startswith("error: forbidden:")
    assert cnai(platform, "create", "token", CNAI_TOKEN=token).code == 1  # admin only


def test_create_token_without_namespace_is_an_admin_token(platform: RunningPlatform) -> None:
    token = cnai(platform, "create", "token").out.strip()
    assert cnai(platform, "get", "secrets", "-A", CNAI_TOKEN=token).code == 0


# -- secrets never leak ----------------------------------------------------------------


def test_secret_values_only_with_reveal(platform: RunningPlatform, ns: str) -> None:
    text = yaml.safe_dump(secret_doc("vault", ns, password=PLAIN))
    runs = [
        cnai(platform, "apply", "-f", "-", stdin=text),
        cnai(platform, "get", "secrets", "-n", ns),
        cnai(platform, "get", "secrets", "-n", ns, "-o", "wide"),
        cnai(platform, "get", "secret", "vault", "-n", ns, "-o", "yaml"),
        cnai(platform, "get", "secrets", "-n", ns, "-o", "json"),
        cnai(platform, "get", "secrets", "-A", "-o", "yaml"),
        cnai(platform, "describe", "secret", "vault", "-n", ns),
        cnai(platform, "delete", "secret", "absent", "-n", ns),
    ]
    for ran in runs:
        assert PLAIN not in ran.out + ran.err
        assert ENCODED not in ran.out + ran.err
    hidden = yaml.safe_load(runs[3].out)
    assert hidden["data"] == {"password": f"<redacted: {len(PLAIN)} bytes>"}
    revealed = cnai(platform, "get", "secret", "vault", "-n", ns, "-o", "yaml", "--reveal")
    assert yaml.safe_load(revealed.out)["data"] == {"password": ENCODED}
    described = cnai(platform, "describe", "secret", "vault", "-n", ns, "--reveal")
    assert f"  password: {PLAIN}" in described.lines
