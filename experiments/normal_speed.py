"""torch's normal_ against the generator's kernel for it (issue 14, goal 4)

    flock /tmp/cpu.lock python experiments/normal_speed.py

The noisy rectangles' pixel noise of one ``generate_images(256, 64)`` call is about 196,000
standard normals, drawn on the caller's thread while the other renders (data_gen.compiled).
``Stream.normal`` (data_gen._kernels.stream_rand32 and box_muller) makes torch's ``normal_``
values in kernels. This script times, on one torch thread and in turns (so that the VM's
phases hit all alike), calls of:

* torch's ``normal_`` and ``uniform_`` on 196,000 float32 values;
* ``Stream.normal`` and ``Stream.rand`` on the same count (the stream's state read from the
  generator and written back each call, as the generator does);

checks that ``Stream.normal`` gave torch's values bit for bit and left the generator where
torch's left it, and writes normal_speed.json to --out-dir (default docs/). Medians of --rounds
calls each.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COUNT = 196_000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--out-dir", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    if args.rounds < 1:
        print("normal_speed: --rounds must be at least 1", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(1)
    from data_gen import compiled
    from denoise_vit.benchmark.runner import machine_info

    if not (compiled.Stream.usable(torch.Generator()) and compiled._normal_checked()):
        print("normal_speed: the kernel is not used here (no numba, or torch's normal_ takes "
              "another path on this CPU)", file=sys.stderr)
        return 2
    ours, theirs = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    with compiled.Stream(ours) as stream:
        mine = stream.normal(torch.empty(COUNT))
    same = (torch.equal(mine.view(torch.int32),
                        torch.empty(COUNT).normal_(generator=theirs).view(torch.int32))
            and torch.equal(ours.get_state(), theirs.get_state()))

    out = torch.empty(COUNT)

    def kernel(draw):
        def call():
            with compiled.Stream(ours) as s:
                draw(s)
        return call

    calls = {
        "torch normal_": lambda: out.normal_(generator=theirs),
        "Stream.normal": kernel(lambda s: s.normal(out)),
        "torch uniform_": lambda: out.uniform_(generator=theirs),
        "Stream.rand": kernel(lambda s: s.rand((COUNT,), torch.float32)),
    }
    times = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(args.rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) * 1e6 for name, t in times.items()}
    result = {
        "command": "flock /tmp/cpu.lock python experiments/normal_speed.py"
                   + ("" if args.rounds == 300 else f" --rounds {args.rounds}"),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": machine_info(),
        "count": COUNT, "rounds": args.rounds, "threads": 1,
        "same_values_and_state": same,
        "median_us": {k: round(v, 1) for k, v in medians.items()},
        "speedup": round(medians["torch normal_"] / medians["Stream.normal"], 2),
    }
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.out_dir) / "normal_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{COUNT:,} float32 values, 1 thread, medians of {args.rounds} calls in turns "
          f"(bit for bit torch's: {same})")
    for name, us in medians.items():
        print(f"  {name:15s} {us:8.1f} us")
    print(f"  normal: {result['speedup']}x torch's")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
