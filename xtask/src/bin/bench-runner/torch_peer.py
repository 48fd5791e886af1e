# Times the bench cases in PyTorch on the CPU, in the same run as residual.
# stdin: a JSON list of cases; stdout: one JSON object per case.
import json
import warnings
import statistics
import sys
import time

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")
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


def ort_infer(model, x):
    """ONNX Runtime on the exported model, or a note saying why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime not importable"
    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    try:
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], dynamo=False)
    except Exception as e:  # noqa: BLE001 - report whatever the exporter says
        return None, f"ONNX export failed: {type(e).__name__}"
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(sys.argv[1])
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    return timed(lambda: sess.run(None, {"x": xn})), None


for case in json.load(sys.stdin):
    k = case["kind"]
    extra = {}
    if k == "train":
        import torchvision
        model = getattr(torchvision.models, case["model"])(num_classes=10).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(case["batch"], 3, case["size"], case["size"])
        y = torch.arange(case["batch"]) % 10

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        secs = timed(step)
        print(json.dumps({"case": case["case"], "torch_gflops": case["flops"] / secs / 1e9,
                          "torch_version": torch.__version__}), flush=True)
        continue
    if k == "infer":
        import torchvision
        model = getattr(torchvision.models, case["model"])().eval()
        x = torch.randn(case["batch"], 3, case["size"], case["size"])
        with torch.inference_mode():
            secs = timed(lambda: model(x))
        ort_secs, note = ort_infer(model, x)
        if ort_secs:
            extra["ort_gflops"] = case["flops"] / ort_secs / 1e9
        else:
            extra["ort_note"] = note
        print(json.dumps({"case": case["case"], "torch_gflops": case["flops"] / secs / 1e9,
                          "torch_version": torch.__version__, **extra}), flush=True)
        continue
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
