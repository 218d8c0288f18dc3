"""Measure training and inference step times of the 32 torchvision models on this machine's GPU,
with the protocol of ../shared/data/runtime/ (ryujaehun/pytorch-gpu-benchmark): float32, batch
12 of random 224x224 images made on the CPU and copied to the GPU inside the timed step,
cudnn.benchmark on, randomly initialised weights; training = zero_grad + forward +
cross-entropy + backward (no optimiser step), inference = eval() + no_grad forward; each step
timed between two cuda synchronisations. Writes GPU__train.csv and GPU__inference.csv in that
format (one column per model, one row per timed step in milliseconds) plus environment.json.

Usage: python3 scripts/gpu-step-times.py OUT_DIR [--steps 50] [--warmup 5]
"""

import argparse
import json
import pathlib
import time

import torch
import torch.nn as nn
import torchvision

MODELS = [
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet169", "densenet201", "densenet161",
    "squeezenet1_0", "squeezenet1_1",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19_bn", "vgg19",
    "mobilenet_v2",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
]
BATCH = 12
CLASSES = 1000


def steps(model, training, n, warmup):
    """Milliseconds of n timed steps after warmup untimed ones."""
    criterion = nn.CrossEntropyLoss()
    target = torch.randint(0, CLASSES, (BATCH,), device="cuda")
    out = []
    model.train(training)
    for i in range(warmup + n):
        img = torch.randn(BATCH, 3, 224, 224)
        torch.cuda.synchronize()
        start = time.perf_counter()
        if training:
            model.zero_grad()
            loss = criterion(model(img.to("cuda")), target)
            loss.backward()
        else:
            with torch.no_grad():
                model(img.to("cuda"))
        torch.cuda.synchronize()
        ms = (time.perf_counter() - start) * 1000.0
        if i >= warmup:
            out.append(ms)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out", type=pathlib.Path)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--models", default=",".join(MODELS))
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name().replace(" ", "_")
    models = a.models.split(",")
    a.out.mkdir(parents=True, exist_ok=True)
    results = {"train": {}, "inference": {}}
    for name in models:
        t0 = time.perf_counter()
        model = getattr(torchvision.models, name)(weights=None).cuda()
        results["train"][name] = steps(model, True, a.steps, a.warmup)
        results["inference"][name] = steps(model, False, a.steps, a.warmup)
        del model
        torch.cuda.empty_cache()
        med = {m: sorted(v[name])[len(v[name]) // 2] for m, v in results.items()}
        print(f"{name:22} train {med['train']:8.2f} ms  inference {med['inference']:8.2f} ms"
              f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    for mode, cols in results.items():
        path = a.out / f"{gpu}__{mode}.csv"
        with path.open("w") as f:
            f.write(",".join(models) + "\n")
            for row in range(a.steps):
                f.write(",".join(repr(cols[m][row]) for m in models) + "\n")
    env = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "batch": BATCH,
        "steps": a.steps,
        "warmup": a.warmup,
    }
    (a.out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    print(json.dumps(env))


if __name__ == "__main__":
    main()
