# Times one bench case in PyTorch, in the same run as residual and right
# before or after it: on the CPU, or on CUDA when residual runs on a GPU
# (`cargo xtask bench --device wgpu`). The runner starts a fresh process per
# case, so that torch_peak_mem_mb (the process's peak resident memory after
# PyTorch eager timed the case, before any other peer ran) is the case's own.
# argv: min seconds, device (cpu | cuda); exit status 3 when CUDA is asked
# for and PyTorch has none.
# stdin: one JSON case (its "threads" is the thread count); stdout: one JSON object.
import json
import resource
import warnings
import statistics
import sys
import time

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")
CASE = json.load(sys.stdin)
THREADS = int(CASE["threads"])
torch.set_num_threads(THREADS)
torch.manual_seed(0)
MIN_SECS = float(sys.argv[1])
DEVICE = sys.argv[2] if len(sys.argv) > 2 else "cpu"
if DEVICE == "cuda":
    if not torch.cuda.is_available():
        sys.exit(3)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn):
    fn()
    sync()
    times = []
    t_end = time.perf_counter() + MIN_SECS
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 20):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_mem_mb():
    """This process's peak resident memory so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frozen_infer(model, x):
    """PyTorch's own inference path: the traced model frozen (batch norm folded
    into the convolutions, constants propagated), then, where it helps,
    optimize_for_inference; the faster of the two, named."""
    best = None
    try:
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model, x))
            best = (timed(lambda: frozen(x)), "jit.freeze(jit.trace)")
            optimized = torch.jit.optimize_for_inference(frozen)
            secs = timed(lambda: optimized(x))
            if secs < best[0]:
                best = (secs, "jit.optimize_for_inference(jit.freeze(jit.trace))")
    except Exception as e:  # noqa: BLE001 - report whatever TorchScript says
        if best is None:
            return None, f"torch.jit.freeze failed: {type(e).__name__}"
    return best


def ort_infer(model, x):
    """ONNX Runtime on the exported model, or a note saying why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime not importable"
    import os
    import tempfile
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    # The session reads the whole file when it is made: the exported model
    # (240 MB for ResNet-152) is removed right after.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], dynamo=False)
        except Exception as e:  # noqa: BLE001 - report whatever the exporter says
            return None, f"ONNX export failed: {type(e).__name__}"
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    return timed(lambda: sess.run(None, {"x": xn})), None


def zoo_model(name, **kwargs):
    """torchvision's ResNets, or timm's models for the names timm registers
    (the ViT hybrids), with timm's random init."""
    if name.startswith("vit_"):
        import timm
        return timm.create_model(name, pretrained=False, **kwargs)
    import torchvision
    return getattr(torchvision.models, name)(**kwargs)


def main(case):
    k = case["kind"]
    extra = {}
    if k == "train":
        model = zoo_model(case["model"], num_classes=10).train().to(DEVICE)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(case["batch"], 3, case["size"], case["size"], device=DEVICE)
        y = (torch.arange(case["batch"]) % 10).to(DEVICE)

        # Mixed precision as PyTorch recommends it: bf16 autocast on the CPU,
        # f16 autocast with a GradScaler on CUDA.
        amp_dtype = torch.bfloat16 if DEVICE == "cpu" else torch.float16
        scaler = torch.amp.GradScaler(DEVICE) if case.get("amp") and DEVICE != "cpu" else None

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(DEVICE, dtype=amp_dtype, enabled=bool(case.get("amp"))):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()

        secs = timed(step)
        return {"torch_gflops": case["flops"] / secs / 1e9, "torch_peak_mem_mb": peak_mem_mb()}
    if k == "infer":
        model = zoo_model(case["model"], num_classes=1000).eval().to(DEVICE)
        x = torch.randn(case["batch"], 3, case["size"], case["size"], device=DEVICE)
        # bf16 rows: PyTorch's bf16 inference as it recommends it on the CPU,
        # autocast (its weight cast cache lives for one autocast region, so
        # each forward casts the weights). No frozen path for them (tracing
        # under autocast is not a supported path); ONNX Runtime stays fp32.
        bf16 = bool(case.get("bf16"))
        with torch.inference_mode(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=bf16):
            secs = timed(lambda: model(x))
        extra["torch_peak_mem_mb"] = peak_mem_mb()
        if bf16:
            extra["torch_frozen_note"] = "no frozen path for bf16 rows"
            extra["ort_precision"] = "fp32"
        if DEVICE == "cpu":
            frozen_secs, how = (None, extra["torch_frozen_note"]) if bf16 else frozen_infer(model, x)
            if frozen_secs:
                extra["torch_frozen_gflops"] = case["flops"] / frozen_secs / 1e9
                extra["torch_frozen_path"] = how
            else:
                extra["torch_frozen_note"] = how
            ort_secs, note = ort_infer(model, x)
            if ort_secs:
                extra["ort_gflops"] = case["flops"] / ort_secs / 1e9
            else:
                extra["ort_note"] = note
        return {"torch_gflops": case["flops"] / secs / 1e9, **extra}
    with torch.no_grad() if k != "conv_bwd" else torch.enable_grad():
        if k == "sgemm":
            n = case["n"]
            dt = {"bf16": torch.bfloat16, "f16": torch.float16}.get(case.get("dtype"), torch.float32)
            a = torch.randn(n, n, device=DEVICE).to(dt)
            b = torch.randn(n, n, device=DEVICE).to(dt)
            secs = timed(lambda: torch.mm(a, b))
        else:
            x = torch.randn(case["x"], device=DEVICE, requires_grad=(k == "conv_bwd"))
            w = torch.randn(case["w"], device=DEVICE, requires_grad=(k == "conv_bwd"))
            kw = dict(stride=case["stride"], padding=case["padding"])
            if k == "conv_fwd":
                secs = timed(lambda: F.conv2d(x, w, **kw))
            else:
                y = F.conv2d(x, w, **kw)
                dy = torch.randn_like(y)
                secs = timed(lambda: torch.autograd.grad(y, (x, w), dy, retain_graph=True))
    return {"torch_gflops": case["flops"] / secs / 1e9, "torch_peak_mem_mb": peak_mem_mb()}


print(json.dumps({"case": CASE["case"], "torch_version": torch.__version__, **main(CASE)}), flush=True)
