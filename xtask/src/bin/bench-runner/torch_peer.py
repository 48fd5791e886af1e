# Times the bench cases in PyTorch on the CPU, in the same run as residual.
# stdin: a JSON list of cases; stdout: one JSON object per case.
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
MIN_SECS = float(sys.argv[2])


def timed(fn):
    fn()
    times = []
    t_end = time.perf_counter() + MIN_SECS
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 20):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


for case in json.load(sys.stdin):
    k = case["kind"]
    with torch.no_grad() if k != "conv_bwd" else torch.enable_grad():
        if k == "sgemm":
            n = case["n"]
            a, b = torch.randn(n, n), torch.randn(n, n)
            secs = timed(lambda: torch.mm(a, b))
        else:
            x = torch.randn(case["x"], requires_grad=(k == "conv_bwd"))
            w = torch.randn(case["w"], requires_grad=(k == "conv_bwd"))
            kw = dict(stride=case["stride"], padding=case["padding"])
            if k == "conv_fwd":
                secs = timed(lambda: F.conv2d(x, w, **kw))
            else:
                y = F.conv2d(x, w, **kw)
                dy = torch.randn_like(y)
                secs = timed(lambda: torch.autograd.grad(y, (x, w), dy, retain_graph=True))
    print(json.dumps({"case": case["case"], "torch_gflops": case["flops"] / secs / 1e9,
                      "torch_version": torch.__version__}), flush=True)
