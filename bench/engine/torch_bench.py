"""PyTorch side of bench/engine/compare.bench.ts: the same models, shapes, batch and thread count.

Run by compare.bench.ts with Debian's torch (/usr/bin/python3, `apt-get install -y --no-install-recommends
python3-torch`). Protocol: one JSON request per stdin line ({"workload": ..., "reps": n}), one JSON reply
per stdout line ({"img_per_s": ..., "ms": ...}), so the two sides can alternate workload by workload.
Models are built once per workload and cached (weights random: throughput only).
"""

import json
import os
import sys
import time

import torch
from torch import nn


def conv_bn_relu(cin, cout, k, stride=1, bias=False, relu6=False, groups=1):
    pad = k // 2
    return [
        nn.Conv2d(cin, cout, k, stride, pad, bias=bias, groups=groups),
        nn.BatchNorm2d(cout),
        nn.ReLU6() if relu6 else nn.ReLU(),
    ]


def smallcnn():
    layers, cin = [], 3
    for f in [32, 64, 128, 128]:
        layers += conv_bn_relu(cin, f, 3) + [nn.MaxPool2d(2)]
        cin = f
    return nn.Sequential(*layers), cin


def nin():
    # headbench NIN_BLOCKS: [k x k filters, kernel, 1x1, 1x1]; 3x3/2 max-pool + dropout between blocks.
    layers, cin = [], 3
    blocks = [(64, 5, 64, 64), (128, 3, 128, 128), (192, 3, 192, 192)]
    for i, (f, k, c1, c2) in enumerate(blocks):
        layers += conv_bn_relu(cin, f, k)
        layers += [nn.Conv2d(f, c1, 1), nn.ReLU(), nn.Conv2d(c1, c2, 1), nn.ReLU()]
        if i < len(blocks) - 1:
            layers += [nn.MaxPool2d(3, 2, 1), nn.Dropout(0.25)]
        cin = c2
    return nn.Sequential(*layers), cin


def vgg(depth):
    per_block = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}[depth]
    layers, cin = [], 3
    for n, f in zip(per_block, [64, 128, 256, 512, 512]):
        for _ in range(n):
            layers += [nn.Conv2d(cin, f, 3, 1, 1), nn.ReLU()]
            cin = f
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else conv_bn_relu(cin, hidden, 1, relu6=True)
        layers += conv_bn_relu(hidden, hidden, 3, stride, relu6=True, groups=hidden)
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def mobilenetv2():
    # Keras MobileNetV2 alpha 1.0 without top: stem, 17 inverted residual blocks, Conv_1 1x1 1280.
    layers = conv_bn_relu(3, 32, 3, 2, relu6=True)
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += conv_bn_relu(cin, 1280, 1, relu6=True)
    return nn.Sequential(*layers)


def classifier(base, channels, classes=10):
    return nn.Sequential(base, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def dense_head():
    # Frozen-backbone head on cached 7x7x512 features: Flatten -> Dense(512, relu) -> Dense(10).
    return nn.Sequential(nn.Flatten(), nn.Linear(7 * 7 * 512, 512), nn.ReLU(), nn.Linear(512, 10))


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent (timm's / Radenovic et al.'s), eps 1e-6."""

    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean((-2, -1)).pow(1.0 / self.p)


def gem_head(channels, classes):
    # headbench's `gem` head on cached features: GeM -> Dense(classes).
    return nn.Sequential(GeM(), nn.Linear(channels, classes))


def blas_report():
    """Which BLAS this torch really calls: BLAS_INFO from its build, the BLAS library the process has
    mapped (Debian's torch says BLAS_INFO=generic and links libblas.so.3, which is whatever the
    alternatives system points at: OpenBLAS when libopenblas0-pthread is installed, else the reference
    BLAS, 10-30x slower for a Dense layer), and a 32x20480x512 product's time as a probe."""
    config = torch.__config__.show()
    info = next((part.split("=", 1)[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?")
    a, b = torch.randn(32, 20480), torch.randn(20480, 512)
    a @ b  # loads the BLAS
    t0 = time.perf_counter()
    for _ in range(3):
        a @ b
    probe_ms = (time.perf_counter() - t0) * 1000 / 3
    libs = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "blas" in path.lower() or "mkl" in path.lower() or "blis" in path.lower():
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    optimized_names = ("openblas", "mkl", "blis", "atlas", "accelerate")
    optimized = info.lower() in optimized_names or any(n in lib.lower() for lib in libs for n in optimized_names)
    return {"blas_info": info, "blas_libs": sorted(libs), "blas_optimized": optimized, "blas_probe_ms": probe_ms}


_cache = {}


def workload(req):
    key = json.dumps(req["spec"], sort_keys=True)
    if key in _cache:
        return _cache[key]
    spec = req["spec"]
    kind, model, size, batch = spec["kind"], spec["model"], spec["size"], spec["batch"]
    if model == "smallcnn":
        net = classifier(*smallcnn())
    elif model == "nin":
        net = classifier(*nin())
    elif model == "dense_head":
        net = dense_head()
    elif model == "gem_head":
        net = gem_head(spec["channels"], spec["classes"])
    elif model in ("vgg16", "vgg19"):
        net = vgg(int(model[3:]))
    elif model == "mobilenetv2":
        net = mobilenetv2()
    else:
        raise ValueError(model)
    if model == "dense_head":
        shape = [batch, 512, 7, 7]
    elif model == "gem_head":
        shape = [batch, spec["channels"], size, size]
    else:
        shape = [batch, 3, size, size]
    # Head inputs are a backbone's post-ReLU features: non-negative.
    x = torch.rand(*shape) if model == "gem_head" else torch.randn(*shape)
    if kind == "train":
        y = torch.randint(0, spec.get("classes", 10), (batch,))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        net.train()

        def step():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
    else:
        net.eval()

        def step():
            with torch.no_grad():
                net(x)
    step()  # warm-up
    _cache[key] = (step, batch)
    return _cache[key]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    ready = {"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), **blas_report()}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        step, batch = workload(req)
        t0 = time.perf_counter()
        for _ in range(req["reps"]):
            step()
        ms = (time.perf_counter() - t0) * 1000 / req["reps"]
        print(json.dumps({"img_per_s": batch * 1000 / ms, "ms": ms}), flush=True)


if __name__ == "__main__":
    main()
