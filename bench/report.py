"""Renders bench/run's raw lines as the Markdown table in bench/RESULTS.md."""
import os
import platform
import re
import subprocess
import sys

LABELS = {
    "floor": "trivial component (floor)",
    "health": "GET /api/v1/health",
    "users_me": "GET /api/v1/users/me (cache warm)",
    "product": "GET /api/v1/products/{id} (cache warm)",
    "product_miss": "GET /api/v1/products/{id} (cache miss: cache_ttl_secs=0)",
    "login": "POST /api/v1/auth/login",
    "order": "POST /api/v1/orders",
    "upload_content": "GET /api/v1/uploads/{id}/content (1 MiB, public)",
}


def main(results_path, peak_kb, duration, command):
    rows = {}
    for line in open(results_path):
        m = re.match(r"(\w+) c=(\d+) BENCH (.*)", line.strip())
        if not m:
            continue
        fields = dict(kv.split("=") for kv in m.group(3).split())
        rows.setdefault(m.group(1), {})[int(m.group(2))] = {k: float(v) for k, v in fields.items()}
    floor = rows.get("floor", {})
    conns = sorted({c for r in rows.values() for c in r})
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print("# Benchmark results\n")
    print(f"- Command: `{command.strip()}` ({duration} s per run, wrk on the same machine)")
    print(f"- Machine: {cpu} cores, {platform.machine()}, {platform.system()} {platform.release()}")
    print("- Server: the project's test host (`spin-test-host`, wasmtime 48, pooling allocator, "
          "TCP_NODELAY), `bench-host` profile; MariaDB and Redis on the same machine")
    print(f"- Peak memory of the app host process (VmHWM): {int(peak_kb) / 1024:.0f} MiB\n")
    print("| route | conns | req/s | p50 ms | p99 ms | ratio to floor | non-2xx | socket errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in LABELS.items():
        for c in conns:
            r = rows.get(name, {}).get(c)
            if r is None:
                continue
            f = floor.get(c, {}).get("rps", 0)
            ratio = f"{r['rps'] / f:.3f}" if f else "n/a"
            print(f"| {label} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{ratio} | {int(r['non2xx'])} | {int(r['socket_errors'])} |")
    print()
    analysis = os.path.join(os.path.dirname(__file__), "ANALYSIS.md")
    if os.path.exists(analysis):
        print(open(analysis).read())


if __name__ == "__main__":
    main(*sys.argv[1:5])
