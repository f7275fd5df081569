"""Renders bench/run's raw lines as the measured part of bench/RESULTS.md.

    report.py RESULTS_TXT DURATION COMMAND RESULTS_MD

Everything in RESULTS_MD from the `<!-- analysis -->` line on is written by
hand and kept; everything above it is replaced.
"""
import os
import platform
import re
import sys

LABELS = {
    "floor": "trivial component (floor)",
    "kv_probe": "one key-value read (floor + 1 read)",
    "health": "GET /api/v1/health",
    "users_me": "GET /api/v1/users/me (cache warm)",
    "product": "GET /api/v1/products/{id} (cache warm)",
    "product_miss": "GET /api/v1/products/{id} (cache miss: cache_ttl_secs=0)",
    "product_miss_primary": "GET /api/v1/products/{id} (cache miss, a MariaDB of the bench's own)",
    "product_miss_replica": "GET /api/v1/products/{id} (cache miss, read on its replica: db_read_url)",
    "login": "POST /api/v1/auth/login",
    "order": "POST /api/v1/orders (one hot product)",
    "order_spread": "POST /api/v1/orders (spread over 100 products)",
    "upload_content": "GET /api/v1/uploads/{id}/content (1 MiB, public)",
}
RUNTIMES = {
    "host": "test host",
    "spin": "Spin",
    "host_sqlite": "test host, Spin's SQLite",
    "spin_sqlite": "Spin, its SQLite",
}
MARKER = "<!-- analysis"


def parse(path):
    rows, sizes, startup, peak, spin_version, native = {}, {}, {}, {}, None, {}
    for line in open(path):
        line = line.strip()
        m = re.match(r"(\w+):(\w+) c=(\d+) BENCH (.*)", line)
        if m:
            fields = dict(kv.split("=") for kv in m.group(4).split())
            run = rows.setdefault(m.group(1), {}).setdefault(m.group(2), {})
            run[int(m.group(3))] = {k: float(v) for k, v in fields.items()}
        elif re.match(r"\w+:\w+ c=\d+ LOCKS ", line):
            # runtime:name c=N LOCKS waits_before time_ms_before waits_after time_ms_after
            m = re.match(r"(\w+):(\w+) c=(\d+) LOCKS (\d+) (\d+) (\d+) (\d+)", line)
            if m:
                w0, t0, w1, t1 = (int(m.group(i)) for i in range(4, 8))
                run = rows.setdefault(m.group(1), {}).setdefault(m.group(2), {})
                run.setdefault(int(m.group(3)), {}).update(
                    lock_waits=w1 - w0, lock_wait_ms=(t1 - t0) / (w1 - w0) if w1 > w0 else 0.0)
        elif line.startswith("SIZE "):
            _, name, size = line.split()
            sizes[name] = int(size)
        elif line.startswith("STARTUP "):
            _, runtime, cache, ms = line.split()
            startup.setdefault(runtime, {})[cache] = int(ms)
        elif line.startswith("PEAK "):
            _, runtime, kb = line.split()
            peak[runtime] = int(kb)
        elif line.startswith("SPINVERSION "):
            spin_version = line.split(" ", 1)[1]
        elif line.startswith(("NATIVE ", "NATIVE-LIBARGON2 ")):
            # NATIVE argon2id m=… t=… p=… threads=1 … per_core_per_s=… (tools/argon2-baseline);
            # NATIVE-LIBARGON2 the same from bench/libargon2.py.
            impl = "argon2 crate" if line.startswith("NATIVE ") else "libargon2"
            native[impl] = dict(kv.split("=") for kv in line.split()[2:])
    return rows, sizes, startup, peak, spin_version, native


def ratio(a, b):
    return f"{a / b:.3f}" if b else "n/a"


def render(rows, sizes, startup, peak, spin_version, native, duration, command):
    out = []
    p = out.append
    p("# Benchmark results\n")
    p(f"- Command: `{command.strip()}` ({duration} s per run, wrk on the same machine)")
    p(f"- Machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}")
    p("- Test host: `spin-test-host` (wasmtime 48, pooling allocator, TCP_NODELAY), `bench-host` "
      "profile; MariaDB and Redis (key-value for every app) on the same machine")
    if spin_version:
        p(f"- Spin: {spin_version}, same MariaDB and Redis")
    for runtime, kb in peak.items():
        p(f"- Peak memory of the {RUNTIMES[runtime]}'s API process (VmHWM): {kb / 1024:.0f} MiB")
    p("")
    p("## Component sizes (release .wasm)\n")
    p("| component | bytes | KiB |")
    p("|---|---:|---:|")
    for name, size in sizes.items():
        p(f"| {name} | {size} | {size / 1024:.0f} |")
    p("")
    if native:
        p("## Native argon2id baselines (tools/argon2-baseline, bench/libargon2.py)\n")
        p("| implementation | parameters | verifications/s per core | ms each |")
        p("|---|---|---:|---:|")
        for impl, n in native.items():
            p(f"| {impl} | m={n['m']} KiB, t={n['t']}, p={n['p']} | "
              f"{float(n['per_core_per_s']):.1f} | {n['ms_per_verify']} |")
        p("")
    p("## Start-up: process start to first answer of the API (its six components)\n")
    p("| runtime | compile cache | ms |")
    p("|---|---|---:|")
    for runtime, caches in startup.items():
        for cache, ms in caches.items():
            p(f"| {RUNTIMES[runtime]} | {cache} | {ms} |")
    p("")
    for runtime, runs in rows.items():
        floor = runs.get("floor", {})
        conns = sorted({c for r in runs.values() for c in r})
        p(f"## {RUNTIMES[runtime]}\n")
        p("| route | conns | req/s | p50 ms | p99 ms | ratio to floor | non-2xx | socket errors |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, label in LABELS.items():
            for c in conns:
                r = runs.get(name, {}).get(c)
                if r is None:
                    continue
                f = floor.get(c, {}).get("rps", 0)
                p(f"| {label} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{ratio(r['rps'], f)} | {int(r['non2xx'])} | {int(r['socket_errors'])} |")
        p("")
    if len(rows) > 1:
        p("## Side by side at 32 connections (ratio to each runtime's own floor)\n")
        names = list(rows)
        p("| route | " + " | ".join(f"{RUNTIMES[n]} req/s | {RUNTIMES[n]} ratio" for n in names) + " |")
        p("|---|" + "---:|---:|" * len(names))
        for name, label in LABELS.items():
            cells = []
            for n in names:
                r = rows[n].get(name, {}).get(32)
                f = rows[n].get("floor", {}).get(32, {}).get("rps", 0)
                cells += [f"{r['rps']:.0f}", ratio(r["rps"], f)] if r else ["–", "–"]
            p(f"| {label} | " + " | ".join(cells) + " |")
        p("")
    p("## Targets at 32 connections (ratios within one run)\n")
    for runtime, runs in rows.items():
        at = lambda n: runs.get(n, {}).get(32, {})
        me, product, health = at("users_me"), at("product"), at("health")
        spread, hot = at("order_spread"), at("order")
        if not (me and product and health and spread and hot):
            continue
        p(f"- {RUNTIMES[runtime]}: warm `/users/me` / warm product read = "
          f"{ratio(me['rps'], product['rps'])} (target ≥ 0.9); orders over 100 products / "
          f"`GET /health` = {ratio(spread['rps'], health['rps'])} (target ≥ 0.6), their p99 "
          f"{spread['p99_ms']:.1f} ms (target ≤ 50); the hot product's p99 {hot['p99_ms']:.1f} ms")
    for runtime, runs in rows.items():
        hot = runs.get("order", {}).get(32, {})
        if hot.get("p50_ms"):
            line = (f"- {RUNTIMES[runtime]}: orders on one hot product: p99 / p50 = "
                    f"{hot['p99_ms']:.1f} / {hot['p50_ms']:.1f} ms = "
                    f"{ratio(hot['p99_ms'], hot['p50_ms'])} (target ≤ 1.5)")
            # The MySQL rows run on the machine's MariaDB, whose row-lock
            # totals bench/run reads around each run; SQLite has none.
            if hot.get("lock_waits") and hot.get("requests"):
                line += (f"; {hot['lock_waits'] / hot['requests']:.2f} InnoDB row-lock waits per "
                         f"order, {hot['lock_wait_ms']:.1f} ms each on average")
            p(line)
    for runtime, runs in rows.items():
        login = runs.get("login", {}).get(1)
        for impl, n in native.items():
            if not login:
                continue
            per_core = float(n["per_core_per_s"])
            p(f"- {RUNTIMES[runtime]}: login at 1 connection / native argon2id verifications per "
              f"core ({impl}) = {login['rps']:.1f} / {per_core:.1f} = "
              f"{ratio(login['rps'], per_core)} (target ≥ 0.6)")
    p("")
    return "\n".join(out)


def main(results_path, duration, command, markdown_path):
    measured = render(*parse(results_path), duration, command)
    analysis = f"{MARKER}: written by hand; bench/run keeps everything from here on -->\n"
    if os.path.exists(markdown_path):
        text = open(markdown_path).read()
        at = text.find(MARKER)
        if at >= 0:
            analysis = text[at:]
    with open(markdown_path, "w") as f:
        f.write(measured + "\n" + analysis)


if __name__ == "__main__":
    main(*sys.argv[1:5])
