"""Where a compiled workload's GPU step goes, kernel by kernel (a lent GPU machine).

    python -m benchmarks.gpu_profile [W1,W3,W4,W5] [--size full] [--n N]

For each workload: jitgrad's compiled step on the GPU (the suite's own setup), warmed up, then
timed (median wall time per step, synchronised) and profiled through PyTorch's profiler, which
reads CUPTI and so sees every kernel of the process, Numba's included. Prints, per workload, the
kernels of one step with their launches and device time per step, the device time summed over
them, and the wall time; `--n` overrides W1's element count (2^26 for the bandwidth goal).
Needs torch with CUDA for the kernel table (the wall times need only numba.cuda).
"""
import argparse
import statistics
import time


def _step(key, size, n):
    import jitgrad
    from benchmarks.suite import JitgradCompiledPeer, OnDevice
    from benchmarks.workloads import WORKLOADS
    workload = WORKLOADS[key](size)
    if n and key == "W1":
        workload.params["n"] = n
    peer = JitgradCompiledPeer(OnDevice(jitgrad, "cuda"))
    return workload, peer.setup(workload, workload.data())


def _kernel_table(step, steps, sync):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        sync()
    rows = []
    for event in prof.key_averages():
        device_us = getattr(event, "device_time_total", None)
        if device_us is None:
            device_us = event.cuda_time_total
        if device_us <= 0:
            continue
        rows.append((device_us / steps, event.count / steps, event.key))
    return sorted(rows, reverse=True)


def _host_profile(step, steps, sync):
    import cProfile
    import pstats
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    sync()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="?", default="W1,W3,W4,W5")
    parser.add_argument("--size", default="full")
    parser.add_argument("--n", type=int, default=0, help="W1's element count")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--host", action="store_true",
                        help="also profile the host side of the steps (cProfile)")
    args = parser.parse_args(argv)
    from numba import cuda
    for key in args.workloads.split(","):
        workload, step = _step(key, args.size, args.n)
        for _ in range(3):
            step()
        cuda.synchronize()
        walls = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            cuda.synchronize()
            walls.append(time.perf_counter() - start)
        wall = statistics.median(walls) * 1e6
        print(f"\n{key} {workload.params}: wall {wall:,.1f} us per step (median of {args.steps})")
        if args.host:
            _host_profile(step, args.steps, cuda.synchronize)
        try:
            rows = _kernel_table(step, args.steps, cuda.synchronize)
        except Exception as exc:  # noqa: BLE001 - the table is optional
            print(f"  (no kernel table: {type(exc).__name__}: {exc})")
            continue
        total = sum(r[0] for r in rows)
        print(f"  device time {total:,.1f} us per step in {sum(r[1] for r in rows):.0f} "
              f"launches ({total / wall:.0%} of the wall time)")
        for us, count, name in rows[:12]:
            print(f"  {us:10,.1f} us  x{count:<4.0f} {name[:90]}")


if __name__ == "__main__":
    main()
