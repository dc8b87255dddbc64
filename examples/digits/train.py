"""Train a small CNN on scikit-learn's handwritten digits with DistributedDataParallel.

Run it with torchrun (``torchrun --nproc-per-node 2 examples/digits/train.py``) or as a
cnai TrainJob, which launches it with the same environment plus ``CNAI_CHECKPOINT_DIR``
(kept across restarts) and ``CNAI_RUN_ID`` (the tracking run). After every epoch rank 0
saves a checkpoint; a restarted job resumes from the newest one. At the end rank 0
exports the model as TorchScript: it takes rows of ``load_digits().data`` (64 pixel
values from 0 to 16) and returns 10 logits.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import cnai
from cnai.training import WorldInfo

SPLIT_SEED = 0  # the train/test split is the same for every run and every --seed
# Options added for hyperparameter search; logged only when set otherwise, so a run with
# the defaults logs the same parameters as before they existed.
MODEL_DEFAULTS = {"width": 1.0, "weight_decay": 0.0, "dropout": 0.0}
# What the exported model takes and returns (the model server checks requests by it):
# raw load_digits() rows (64 pixels, 0..16) in, one logit per digit out.
SIGNATURE = {
    "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
    "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
}


class DigitsNet(nn.Module):
    """Two 3x3 convolutions and a 2x2 pool on the 8x8 image, then two linear layers.

    ``width`` scales every layer (16, 32 and 64 units at 1.0); ``dropout`` above 0 adds a
    dropout layer before the last linear one (at 0 there is none, so the module and its
    checkpoints are what they were before these options existed).
    """

    def __init__(self, width: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        c1, c2, hidden = (max(1, round(n * width)) for n in (16, 32, 64))
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(c2 * 4 * 4, hidden), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        self.classifier = nn.Sequential(*head, nn.Linear(hidden, 10))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        images = pixels.reshape(-1, 1, 8, 8) / 16.0  # raw load_digits() rows in, 0..16
        return self.classifier(self.features(images))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32, help="per worker")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--width", type=float, default=1.0, help="multiplies every layer's size (16/32/64)"
    )
    parser.add_argument("--weight-decay", type=float, default=0.0, help="Adam's weight decay")
    parser.add_argument("--dropout", type=float, default=0.0, help="before the last layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epoch-sleep", type=float, default=0.0, help="seconds to pause after each epoch"
    )
    parser.add_argument("--export", type=Path, help="default: <checkpoint dir>/model.pt")
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="register the exported model as the next version of NAME, alias champion "
        "(needs a tracking run: CNAI_RUN_ID, as a TrainJob has)",
    )
    return parser.parse_args()


def datasets() -> tuple[TensorDataset, TensorDataset]:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=SPLIT_SEED, stratify=digits.target
    )

    def tensors(x: object, y: object) -> TensorDataset:
        return TensorDataset(
            torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        )

    return tensors(x_train, y_train), tensors(x_test, y_test)


def train_epoch(
    model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """One pass over this worker's shard; returns the mean loss over all workers."""
    model.train()
    loss_sum, count = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum, count = loss_sum + loss.item() * len(y), count + len(y)
    total = torch.tensor([loss_sum, count], device=device)
    dist.all_reduce(total)
    return (total[0] / total[1]).item()


@torch.no_grad()
def accuracy(model: nn.Module, data: TensorDataset, device: torch.device) -> float:
    model.eval()
    x, y = (t.to(device) for t in data.tensors)
    return (model(x).argmax(dim=1) == y).float().mean().item()


def main() -> None:
    args = parse_args()
    world = cnai.world_info()
    torch.set_num_threads(1)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", world.local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    join_process_group(world, "nccl" if cuda else "gloo", device)
    tracking = world.is_main and bool(os.environ.get("CNAI_RUN_ID"))

    torch.manual_seed(args.seed)
    train_set, test_set = datasets()
    sampler = DistributedSampler(train_set, seed=args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    net = DigitsNet(args.width, args.dropout).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    # Rank 0 reads the checkpoint and shares it, so only its node needs the directory.
    latest = [cnai.checkpoint.load_latest() if world.is_main else None]
    dist.broadcast_object_list(latest, src=0)
    start = 1
    if latest[0] is not None:
        net.load_state_dict(latest[0].state["model"])
        optimizer.load_state_dict(latest[0].state["optimizer"])
        start = latest[0].state["epoch"] + 1
        if world.is_main:
            print(f"resumed from epoch {start - 1}", flush=True)
    elif tracking and world.restart_count == 0:
        hyper = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed")}
        hyper |= {k: v for k, d in MODEL_DEFAULTS.items() if (v := getattr(args, k)) != d}
        cnai.log_params({**hyper, "world_size": world.world_size})
    model = DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None
    )

    for epoch in range(start, args.epochs + 1):
        sampler.set_epoch(epoch)
        loss = train_epoch(model, loader, optimizer, device)
        acc = accuracy(net, test_set, device)
        if world.is_main:
            state = {"model": net.state_dict(), "optimizer": optimizer.state_dict()}
            cnai.checkpoint.save({**state, "epoch": epoch}, epoch)
            print(
                f"epoch {epoch} loss {loss:.4f} accuracy {acc:.4f} "
                f"world {world.world_size} restart {world.restart_count}",
                flush=True,
            )
            if tracking:
                cnai.log_metrics({"loss": loss, "accuracy": acc}, step=epoch)
        time.sleep(args.epoch_sleep)

    if world.is_main:
        final = accuracy(net, test_set, device)
        print(f"test accuracy {final:.4f}", flush=True)
        export = args.export or cnai.checkpoint.checkpoint_dir() / "model.pt"
        export_torchscript(net, export)
        print(f"exported {export}", flush=True)
        if tracking:
            cnai.log_artifact(export, "model")
        if tracking and args.register:
            version = cnai.register_model(
                args.register,
                f"model/{export.name}",
                format="torchscript",
                metrics={"accuracy": final},
                signature=SIGNATURE,
                aliases=["champion"],
            )
            print(f"registered models:/{args.register}/{version['spec']['version']}", flush=True)
    dist.destroy_process_group()


def join_process_group(world: WorldInfo, backend: str, device: torch.device) -> None:
    """``dist.init_process_group``, with one precaution: torchrun (``--max-restarts``)
    keeps its store across restarts, so restarted workers use keys of their own rather
    than read the addresses of the workers they replace (and fail or hang)."""
    store = None
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        agent_store = dist.TCPStore(
            world.master_addr, world.master_port, world.world_size, is_master=False
        )
        store = dist.PrefixStore(f"restart-{world.restart_count}", agent_store)
    dist.init_process_group(
        backend,
        store=store,
        rank=world.rank,
        world_size=world.world_size,
        device_id=device if device.type == "cuda" else None,
    )


def export_torchscript(net: nn.Module, path: Path) -> None:
    """Write the model as TorchScript, on the CPU, replacing ``path`` only when done."""
    scripted = torch.jit.script(net.to("cpu").eval())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    torch.jit.save(scripted, partial)
    os.replace(partial, path)


if __name__ == "__main__":
    main()
