"Shared helpers for the benchmarks: timing, machine description, atomic result files."
import json
import os
import platform
import time
from pathlib import Path
import torch

RESULTS = Path(__file__).resolve().parent / 'results'


def machine() -> dict:
    "What the numbers were measured on."
    d = dict(python=platform.python_version(), torch=torch.__version__, cpu_count=os.cpu_count(),
             torch_threads=torch.get_num_threads(), processor=platform.processor() or platform.machine())
    if torch.cuda.is_available(): d['gpu'] = torch.cuda.get_device_name(0)
    return d


def best_of(fn, repeats: int = 3, sync: bool = False) -> float:
    "The fastest of `repeats` wall-clock timings of `fn()` in seconds (after one warm-up call)."
    fn()
    times = []
    for _ in range(repeats):
        if sync: torch.cuda.synchronize()
        t = time.perf_counter(); fn()
        if sync: torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def save(name: str, result: dict) -> Path:
    "Write `result` (plus the machine description) to results/<name>.json atomically."
    from genai_data.core import atomic_write
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f'{name}.json'
    with atomic_write(path, 'w', encoding='utf-8') as f: json.dump({'machine': machine(), **result}, f, indent=2)
    return path
