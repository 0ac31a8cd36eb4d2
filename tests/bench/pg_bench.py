#!/usr/bin/python3
"""End-to-end benchmark of diskann inside PostgreSQL, on a real data set (TexMex files).

Starts a throwaway cluster (as the unprivileged user vs_test when run as root), loads the
data set with binary COPY, and measures, side by side in one run:

  build     CREATE INDEX time, build WAL bytes and index size (through gpu_builder also where the
            time went, from the extension's LOG line): diskann memory_optimized (SBQ)
            and plain, locally and through gpu_builder (--builder; one builder per backend of
            --builder-backends, e.g. cpu,cuda side by side), and pgvector HNSW when it is
            installed;
  sweep     recall@10, QPS and p50/p99 latency (one client) per search list size / ef_search;
  filtered  label-filtered queries (Filtered DiskANN) for a label matching ~10% and one
            matching ~1% of the rows: the labeled index (embedding, labels), post-filtering
            through the unlabeled index, and a sequential scan; for each, the fastest setting
            reaching recall@10 >= 0.95 and the speed-up of the labeled index over the others;
  clients   throughput with 1, 2 and 4 concurrent clients at the default settings;
  inserts   streaming inserts: half the rows indexed, the other half inserted row by row, in
            rows per second, for diskann (SBQ, plain) and pgvector HNSW when installed;
  storage   (only when asked for) the vector column stored EXTERNAL (pgvector's default: wide
            vectors out of line in TOAST) against PLAIN (in the heap), each table with the
            default SBQ index, the same queries against each in turn, three rounds: QPS, the
            ratio, recall (README, Tuning).

Recall is measured against exact answers: the data set's ground truth (unfiltered) or a
brute-force NumPy search over the matching rows (filtered). Results go to a JSON file and
PNG plots (python3-matplotlib) in --out. Every loop is bounded by --queries and --rows.

Needs Debian's python3 with python3-numpy, python3-psycopg2, python3-matplotlib, and the
extension installed into the PostgreSQL that pg_config names.
"""
import argparse
import contextlib
import gzip
import io
import json
import os
import pwd
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psycopg2

OPS = {"l2": ("<->", "vector_l2_ops"), "cosine": ("<=>", "vector_cosine_ops"), "ip": ("<#>", "vector_ip_ops")}


def log(msg):
    print(msg, flush=True)


# ---- data ------------------------------------------------------------------------------------

def read_vecs(path, dtype, limit=None):
    raw = np.fromfile(path, dtype=np.int32)
    dims = int(raw[0])
    rows = raw.reshape(-1, dims + 1)
    if limit is not None:
        rows = rows[:limit]
    return rows[:, 1:].view(dtype).copy()


def read_labels(path, n):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [[int(x) for x in line.split(",") if x.strip()] for _, line in zip(range(n), f)]


def read_idx(path):
    """An IDX file (MNIST's format, gzip-compressed) as a NumPy array."""
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


FASHION = "/usr/share/datasets/fashion-mnist"


def load_dataset(args):
    """(name, base, queries, labels or None, exact top-10 per query)."""
    if args.data == "fashion-mnist":
        if not os.path.isdir(FASHION):
            sys.exit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
        base = read_idx(f"{FASHION}/train-images-idx3-ubyte.gz").reshape(60000, -1)[:args.rows].astype(np.float32)
        queries = read_idx(f"{FASHION}/t10k-images-idx3-ubyte.gz").reshape(10000, -1)[:args.queries]
        labels = [[int(x)] for x in read_idx(f"{FASHION}/train-labels-idx1-ubyte.gz")[:base.shape[0]]]
        queries = queries.astype(np.float32)
        return "fashion-mnist", base, queries, labels, exact_topk(base, queries, args.metric)
    base = read_vecs(args.data + ".base.fvecs", np.float32, args.rows)
    queries = read_vecs(args.data + ".query.fvecs", np.float32, args.queries)
    labels = read_labels(args.data + ".labels.txt", base.shape[0])
    if args.rows is not None:
        truth = exact_topk(base, queries, args.metric)  # the shipped truth is for all rows
    else:
        truth = read_vecs(args.data + ".gt.ivecs", np.int32, args.queries)
    return os.path.basename(args.data), base, queries, labels, truth


def exact_topk(base, queries, metric, k=10):
    """Row numbers of the k nearest base rows per query (ties: smaller row number first), in float64."""
    base = base.astype(np.float64)
    queries = queries.astype(np.float64)
    if metric == "cosine":
        b = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
        d = -(q @ b.T)
    elif metric == "ip":
        d = -(queries @ base.T)
    else:
        d = (queries ** 2).sum(1)[:, None] - 2 * queries @ base.T + (base ** 2).sum(1)[None, :]
    k = min(k, base.shape[0])
    return np.argsort(d, axis=1, kind="stable")[:, :k]


# ---- a throwaway cluster ---------------------------------------------------------------------

class Cluster:
    def __init__(self, bindir, port=54331):
        self.bindir = bindir
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="vs_bench.")
        self.as_user = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("vs_test")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                "--shell", "/usr/sbin/nologin", "vs_test"], check=True)
            shutil.chown(self.dir, "vs_test")
            self.as_user = ["runuser", "-u", "vs_test", "--"]
        data = os.path.join(self.dir, "data")
        subprocess.run(self.as_user + [f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                                       "--no-locale", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL)
        opts = (f"-c listen_addresses='' -k {self.dir} -p {port} -c shared_buffers=1GB "
                f"-c maintenance_work_mem=4GB -c max_wal_size=8GB -c max_parallel_workers_per_gather=0 "
                f"-c jit=off")
        subprocess.run(self.as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "server.log"),
                                       "-w", "-o", opts, "start"], check=True, stdout=subprocess.DEVNULL)

    def connect(self):
        conn = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        return conn

    def stop(self):
        subprocess.run(self.as_user + [f"{self.bindir}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m",
                                       "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "server.log")) as f:
            crashed = "terminated by signal" in f.read()
        shutil.rmtree(self.dir, ignore_errors=True)
        return not crashed


def copy_binary(cur, table, vectors, labels=None):
    """COPY table (id, embedding[, labels]) FROM STDIN (FORMAT binary)."""
    out = io.BytesIO()
    out.write(b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0))
    n, dims = vectors.shape
    be = vectors.astype(">f4")
    head = struct.pack(">hii", 3 if labels is not None else 2, 4, 0)
    for i in range(n):
        out.write(head[:2] + struct.pack(">ii", 4, i))
        out.write(struct.pack(">ihh", 4 + 4 * dims, dims, 0))
        out.write(be[i].tobytes())
        if labels is not None:
            ls = sorted(set(labels[i]))
            out.write(struct.pack(">iiiiii", 20 + 6 * len(ls), 1, 0, 21, len(ls), 1))
            for v in ls:
                out.write(struct.pack(">ih", 2, v))
    out.write(struct.pack(">h", -1))
    out.seek(0)
    cur.copy_expert(f"COPY {table} FROM STDIN (FORMAT binary)", out)


# ---- measuring -------------------------------------------------------------------------------

def vec_literal(v):
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


def run_queries(cur, sql, params, settings, only=None, warmup=10):
    """Runs sql once per parameter tuple, after settings, in a transaction rolled back at the
    end (so settings do not leak). With only set, every index of items but that one ("" for
    none) is dropped inside the transaction first, so the planner can use no other. Returns
    (ids per query, latencies in seconds)."""
    cur.execute("BEGIN")
    try:
        if only is not None:
            cur.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'items'::regclass")
            for (index,) in cur.fetchall():
                if index != only:
                    cur.execute(f"DROP INDEX {index}")
        for s in settings:
            cur.execute(s)
        for p in params[:warmup]:
            cur.execute(sql, p)
            cur.fetchall()
        ids, lat = [], []
        for p in params:
            t0 = time.perf_counter()
            cur.execute(sql, p)
            rows = cur.fetchall()
            lat.append(time.perf_counter() - t0)
            ids.append([r[0] for r in rows])
    finally:
        cur.execute("ROLLBACK")
    return ids, np.array(lat)


def recall_at_10(ids, truth):
    hits = sum(len(set(got[:10]) & set(int(x) for x in want[:10])) for got, want in zip(ids, truth))
    return hits / sum(min(10, len(w)) for w in truth)


def point(name, setting, ids, lat, truth):
    r = {"method": name, "setting": setting, "recall": round(recall_at_10(ids, truth), 4),
         "qps": round(len(lat) / lat.sum(), 1), "p50_ms": round(1e3 * float(np.percentile(lat, 50)), 3),
         "p99_ms": round(1e3 * float(np.percentile(lat, 99)), 3)}
    log(f"    {name:<28} {setting:<28} recall@10 {r['recall']:.4f}  QPS {r['qps']:>8}  "
        f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms")
    return r


def best_at(points, method, target=0.95):
    ok = [p for p in points if p["method"] == method and p["recall"] >= target]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def create_index(cur, sql, builder=None):
    cur.execute("CHECKPOINT")
    cur.execute("SELECT pg_current_wal_insert_lsn()")
    lsn0 = cur.fetchone()[0]
    if builder:
        cur.execute("SET diskann.builder_endpoint = %s", (builder,))
        cur.execute("SET diskann.builder_fallback = off")
    t0 = time.perf_counter()
    cur.execute(sql)
    secs = time.perf_counter() - t0
    cur.execute("RESET diskann.builder_endpoint")
    cur.execute("RESET diskann.builder_fallback")
    cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn0,))
    wal = int(cur.fetchone()[0])
    return secs, wal


def start_builder(path, backend="auto"):
    proc = subprocess.Popen([path, "--listen", "127.0.0.1:0", "--backend", backend], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    proc.kill()
    sys.exit("gpu_builder did not start")


# ---- sections --------------------------------------------------------------------------------

def remote_phases(server_log):
    """Where the last build through gpu_builder spent its time, from the extension's LOG line."""
    with open(server_log) as f:
        lines = [l for l in f if "built through builder" in l]
    m = re.search(r"\(scan and send ([\d.]+) s, builder until the last page ([\d.]+) s, check ([\d.]+) s, "
                  r"write ([\d.]+) s, WAL ([\d.]+) s\)", lines[-1]) if lines else None
    if m is None:
        return None
    return dict(zip(("scan_and_send", "builder", "check", "write", "wal"), (float(x) for x in m.groups())))


def section_build(cur, args, dims, builder_endpoints, results, server_log):
    op, opclass = OPS[args.metric]
    runs = [("diskann memory_optimized", "memory_optimized", None), ("diskann plain", "plain", None)]
    for backend, endpoint in builder_endpoints:
        runs.append((f"diskann memory_optimized (gpu_builder {backend})", "memory_optimized", endpoint))
    if args.metric == "ip" or dims > 1900:
        runs = [r for r in runs if r[1] != "plain"]
    log("== build")
    for name, storage, endpoint in runs:
        cur.execute("DROP INDEX IF EXISTS items_idx")
        secs, wal = create_index(cur, f"CREATE INDEX items_idx ON items USING diskann (embedding {opclass}) "
                                      f"WITH (storage_layout = {storage})", endpoint)
        cur.execute("SELECT diskann_validate_index('items_idx')")  # raises on any bad page
        cur.execute("SELECT pg_relation_size('items_idx'), built_by || '/' || build_backend "
                    "FROM diskann_index_info('items_idx')")
        size, who = cur.fetchone()
        results["build"].append({"method": name, "seconds": round(secs, 2), "wal_bytes": wal, "index_bytes": size,
                                 "built_by": who})
        log(f"    {name:<40} {secs:7.2f} s  index {size / 2**20:7.1f} MiB  WAL {wal / 2**20:7.1f} MiB  ({who})")
        phases = remote_phases(server_log) if endpoint is not None else None
        if phases is not None:
            results["build"][-1]["phases"] = phases
            log("        " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in phases.items()))
        if endpoint is None or args.sweep_builder_indexes:
            yield name, storage
    if args.hnsw:
        cur.execute("DROP INDEX IF EXISTS items_idx")
        secs, wal = create_index(cur, f"CREATE INDEX items_idx ON items USING hnsw (embedding {opclass})")
        cur.execute("SELECT pg_relation_size('items_idx')")
        size = cur.fetchone()[0]
        results["build"].append({"method": "pgvector hnsw", "seconds": round(secs, 2), "wal_bytes": wal,
                                 "index_bytes": size, "built_by": "local"})
        log(f"    {'pgvector hnsw (m=16, ef_construction=64)':<40} {secs:7.2f} s  index {size / 2**20:7.1f} MiB  "
            f"WAL {wal / 2**20:7.1f} MiB")
        yield "pgvector hnsw", "hnsw"


def sweep(cur, name, kind, sql, params, truth, results):
    points = []
    if kind == "hnsw":
        for ef in (40, 100, 200, 400):
            ids, lat = run_queries(cur, sql, params, ["SET enable_seqscan = off", f"SET hnsw.ef_search = {ef}"])
            points.append(point(name, f"ef_search={ef}", ids, lat, truth))
    else:
        for l in (40, 100, 200):
            for rescore in ((50,) if kind == "plain" else (50, 100)):
                ids, lat = run_queries(cur, sql, params, ["SET enable_seqscan = off",
                                                          f"SET diskann.query_search_list_size = {l}",
                                                          f"SET diskann.query_rescore = {rescore}"])
                points.append(point(name, f"L={l} rescore={rescore}" if kind != "plain" else f"L={l}", ids, lat,
                                    truth))
    results["sweep"].extend(points)


def clients(cluster, sql, params, name, results, seconds=5.0):
    for n in (1, 2, 4):
        counts = [0] * n
        stop = time.time() + seconds

        def worker(i):
            with contextlib.closing(cluster.connect()) as conn, conn.cursor() as c:
                c.execute("SET enable_seqscan = off")
                k = i
                while time.time() < stop:
                    c.execute(sql, params[k % len(params)])
                    c.fetchall()
                    counts[i] += 1
                    k += n
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        qps = sum(counts) / (time.perf_counter() - t0)
        results["clients"].append({"method": name, "clients": n, "qps": round(qps, 1)})
        log(f"    {name:<28} {n} client(s): {qps:8.1f} QPS")


def section_inserts(cur, args, dims, results):
    op, opclass = OPS[args.metric]
    log("== streaming inserts (half built, half inserted by one client)")
    runs = [("diskann memory_optimized", "diskann", "WITH (storage_layout = memory_optimized)"),
            ("diskann plain", "diskann", "WITH (storage_layout = plain)")]
    if args.metric == "ip" or dims > 1900:
        runs = runs[:1]
    if args.hnsw:
        runs.append(("pgvector hnsw", "hnsw", ""))
    for name, method, with_ in runs:
        cur.execute("CREATE TABLE ins AS SELECT id, embedding FROM items WHERE id % 2 = 0")
        cur.execute(f"CREATE INDEX ON ins USING {method} (embedding {opclass}) {with_}")
        t0 = time.perf_counter()
        cur.execute("INSERT INTO ins SELECT id, embedding FROM items WHERE id % 2 = 1")
        rate = cur.rowcount / (time.perf_counter() - t0)
        cur.execute("DROP TABLE ins")
        results["inserts"].append({"method": name, "rows_per_second": round(rate, 1)})
        log(f"    {name:<28} {rate:8.1f} rows/s")


def section_storage(cur, args, dims, params, truth, results, rounds=3):
    op, opclass = OPS[args.metric]
    if 4 * dims + 64 > 8000:
        log(f"== column storage: skipped, a row of {dims} dimensions does not fit a heap page")
        return
    log(f"== column storage: EXTERNAL against PLAIN vectors, the same queries against each in turn, {rounds} rounds")
    tables = {"external": "items", "plain": "items_plain"}
    cur.execute(f"CREATE TABLE items_plain (id int, embedding vector({dims}))")
    cur.execute("ALTER TABLE items_plain ALTER COLUMN embedding SET STORAGE PLAIN")
    cur.execute("INSERT INTO items_plain SELECT id, embedding FROM items")
    cur.execute("VACUUM ANALYZE items_plain")
    for table in tables.values():
        cur.execute(f"CREATE INDEX {table}_storage_idx ON {table} USING diskann (embedding {opclass})")
    for l, rescore in ((40, 50), (100, 100), (100, 0)):
        settings = ["SET enable_seqscan = off", f"SET diskann.query_search_list_size = {l}",
                    f"SET diskann.query_rescore = {rescore}"]
        qps = {storage: [] for storage in tables}
        recall = {}
        for _ in range(rounds):
            for storage, table in tables.items():
                ids, lat = run_queries(cur, f"SELECT id FROM {table} ORDER BY embedding {op} %s::vector LIMIT 10",
                                       params, settings)
                qps[storage].append(round(len(lat) / lat.sum(), 1))
                recall[storage] = round(recall_at_10(ids, truth), 4)
        ratio = round(float(np.mean(qps["plain"]) / np.mean(qps["external"])), 3)
        results["storage"].append({"setting": f"L={l} rescore={rescore}", "qps": qps, "recall": recall,
                                   "plain_over_external": ratio})
        log(f"    L={l:<4} rescore={rescore:<4} QPS external {' '.join(map(str, qps['external']))}  "
            f"plain {' '.join(map(str, qps['plain']))}  ratio {ratio:.2f}  "
            f"recall@10 {recall['external']:.4f} / {recall['plain']:.4f}")
    cur.execute("DROP TABLE items_plain")
    cur.execute("DROP INDEX items_storage_idx")


def pick_label(labels, n, fraction):
    """The label whose share of rows is nearest to fraction (within a factor of 2), or None."""
    counts = {}
    for ls in labels:
        for v in set(ls):
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        return None
    label = min(counts, key=lambda v: (abs(np.log(counts[v] / n / fraction)), v))
    return label if 0.5 <= counts[label] / n / fraction <= 2 else None


def section_filtered(cur, args, base, queries, labels, qtexts, results):
    """Labeled index vs post-filtering through the unlabeled index vs a sequential scan."""
    op, opclass = OPS[args.metric]
    n = base.shape[0]
    cur.execute("DROP INDEX IF EXISTS items_idx")
    cur.execute("DROP INDEX IF EXISTS items_lab_idx")
    log("== filtered (labels)")
    secs, _ = create_index(cur, f"CREATE INDEX items_lab_idx ON items USING diskann (embedding {opclass}, labels)")
    log(f"    labeled index (embedding, labels) built in {secs:.2f} s")
    cur.execute("CREATE INDEX items_idx ON items USING diskann (embedding %s)" % opclass)
    cur.execute("ANALYZE items")
    sql = f"SELECT id FROM items WHERE labels && %s::smallint[] ORDER BY embedding {op} %s::vector LIMIT 10"
    for target in (0.10, 0.01):
        label = pick_label(labels, n, target)
        if label is None:
            log(f"    no label matches about {target:.0%} of the rows: skipped")
            continue
        members = np.array([i for i, ls in enumerate(labels) if label in ls])
        truth = [members[row] for row in exact_topk(base[members], queries, args.metric)]
        share = len(members) / n
        tag = f"{target:.0%}"
        log(f"  filter labels && '{{{label}}}': {len(members)} rows ({share:.2%})")
        points = []
        params = [(f"{{{label}}}", q) for q in qtexts]

        def measure(method, setting, settings, index):
            # Only the index under test may answer (the other is dropped for the run).
            ids, lat = run_queries(cur, sql, params, (["SET enable_seqscan = off"] if index else []) + settings,
                                   only=index)
            points.append(point(f"{method} ({tag})", setting, ids, lat, truth))

        for l, rescore in ((40, 20), (40, 50), (100, 50), (100, 100), (200, 200)):
            measure("labeled diskann", f"L={l} rescore={rescore}",
                    [f"SET diskann.query_search_list_size = {l}", f"SET diskann.query_rescore = {rescore}"],
                    "items_lab_idx")
        for l, rescore in ((100, 50), (200, 200), (1000, 1000)):
            measure("post-filter diskann", f"L={l} rescore={rescore}",
                    [f"SET diskann.query_search_list_size = {l}", f"SET diskann.query_rescore = {rescore}"],
                    "items_idx")
        measure("sequential scan", "exact", [], "")
        entry = {"filter": tag, "label": int(label), "rows": int(len(members)), "share": round(share, 4),
                 "points": points}
        best = {m: best_at(points, f"{m} ({tag})") for m in ("labeled diskann", "post-filter diskann",
                                                              "sequential scan")}
        entry["best_at_0.95"] = best
        lab = best["labeled diskann"]
        if not lab:
            log("    labeled diskann did not reach recall@10 0.95 in this sweep")
        for other in ("post-filter diskann", "sequential scan"):
            if lab and best[other]:
                ratio = lab["qps"] / best[other]["qps"]
                entry[f"speedup_vs_{other.split()[0]}"] = round(ratio, 2)
                log(f"    at recall@10 >= 0.95: labeled diskann {lab['qps']} QPS vs {other} {best[other]['qps']} "
                    f"QPS: {ratio:.1f}x")
            elif lab:
                log(f"    {other} did not reach recall@10 0.95 in this sweep")
        results["filtered"].append(entry)
    cur.execute("DROP INDEX items_lab_idx")


# ---- plots -----------------------------------------------------------------------------------

def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []

    def save(fig, name):
        fig.tight_layout()
        files.append(os.path.join(out, name))
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)

    if results["sweep"]:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method in dict.fromkeys(p["method"] for p in results["sweep"]):
            pts = [p for p in results["sweep"] if p["method"] == method]
            # Every setting as a point; the line joins the Pareto front (no faster setting has
            # at least this recall).
            front = [p for p in pts if not any(q["recall"] >= p["recall"] and q["qps"] > p["qps"] for q in pts)]
            front.sort(key=lambda p: p["recall"])
            line, = ax.plot([p["recall"] for p in front], [p["qps"] for p in front], marker="o", label=method)
            ax.scatter([p["recall"] for p in pts], [p["qps"] for p in pts], s=12, color=line.get_color(), alpha=0.5)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (one client)")
        ax.set_yscale("log")
        ax.set_title(f"{results['dataset']}: recall vs QPS")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "recall_qps.png")
    if results["build"]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = [b["method"] for b in results["build"]]
        ax.barh(names, [b["seconds"] for b in results["build"]])
        ax.set_xlabel("CREATE INDEX seconds")
        ax.set_title(f"{results['dataset']}: build time")
        save(fig, "build_time.png")
    if results["filtered"]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        methods = ("labeled diskann", "post-filter diskann", "sequential scan")
        width = 0.8 / len(results["filtered"])
        for k, entry in enumerate(results["filtered"]):
            qps = [(entry["best_at_0.95"][m] or {"qps": 0})["qps"] for m in methods]
            bars = ax.bar([i + k * width for i in range(len(methods))], qps, width,
                          label=f"filter matching {entry['share']:.1%}")
            for i, m in enumerate(methods):
                if entry["best_at_0.95"][m] is None:
                    best = max((p["recall"] for p in entry["points"] if p["method"].startswith(m)), default=0)
                    ax.text(bars[i].get_x() + width / 2, 0.03, f"never 0.95 (best {best:.2f})", rotation=90,
                            ha="center", va="bottom", fontsize=7, transform=ax.get_xaxis_transform())
        ax.set_xticks([i + width * (len(results["filtered"]) - 1) / 2 for i in range(len(methods))], methods)
        ax.set_ylabel("QPS at recall@10 >= 0.95")
        ax.set_yscale("log")
        ax.set_title(f"{results['dataset']}: filtered queries")
        ax.legend(fontsize=8)
        save(fig, "filtered.png")
    return files


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True,
                    help="data set prefix (PREFIX.base.fvecs, ...), or fashion-mnist (Debian's dataset-fashion-mnist)")
    ap.add_argument("--metric", choices=OPS, default="cosine")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rows", type=int, default=None, help="load at most this many base rows")
    ap.add_argument("--sections", default="build,sweep,filtered,clients,inserts",
                    help="comma-separated; storage is not run by default")
    ap.add_argument("--builder", help="gpu_builder executable: also build through it")
    ap.add_argument("--builder-backends", default="auto",
                    help="comma-separated gpu_builder backends to build through, one builder each (auto, cpu, cuda)")
    ap.add_argument("--sweep-builder-indexes", action="store_true",
                    help="also run the sweep and clients sections on the indexes built through gpu_builder")
    ap.add_argument("--bindir", default=None, help="PostgreSQL bindir (default: pg_config --bindir)")
    ap.add_argument("--out", default="build/bench", help="directory for results.json and the plots")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    bindir = args.bindir or subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                           check=True).stdout.strip()
    name, base, queries, labels, truth_all = load_dataset(args)
    n, dims = base.shape
    if labels is not None and pick_label(labels, n, 0.01) is None:
        labels = [ls + [1000 + i % 100] for i, ls in enumerate(labels)]  # groups of ~1% of the rows
    qtexts = [vec_literal(q) for q in queries]
    params = [(q,) for q in qtexts]
    os.makedirs(args.out, exist_ok=True)

    cluster = Cluster(bindir)
    builders = []
    results = {"dataset": name, "rows": n, "dims": dims, "metric": args.metric, "queries": len(qtexts),
               "build": [], "sweep": [], "filtered": [], "clients": [], "inserts": [], "storage": []}
    try:
        conn = cluster.connect()
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION vectorscale CASCADE")
        cur.execute("SHOW server_version")
        results["postgres"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_am WHERE amname = 'hnsw'")
        args.hnsw = cur.fetchone()[0] == 1
        cur.execute(f"CREATE TABLE items (id int, embedding vector({dims})"
                    + (", labels smallint[])" if labels is not None else ")"))
        t0 = time.perf_counter()
        copy_binary(cur, "items", base, labels)
        cur.execute("VACUUM ANALYZE items")
        log(f"== {name}: {n} rows of {dims} dimensions, {args.metric}, "
            f"{len(qtexts)} queries, PostgreSQL {results['postgres']}; loaded in {time.perf_counter() - t0:.1f} s"
            + ("" if args.hnsw else " (pgvector's hnsw is not installed: no HNSW figures)"))
        op, _ = OPS[args.metric]
        sql = f"SELECT id FROM items ORDER BY embedding {op} %s::vector LIMIT 10"
        endpoints = []
        if args.builder and "build" in sections:
            for backend in args.builder_backends.split(","):
                proc, endpoint = start_builder(args.builder, backend)
                builders.append(proc)
                endpoints.append((backend, endpoint))
        if sections & {"build", "sweep", "clients"}:
            for method, kind in section_build(cur, args, dims, endpoints, results,
                                              os.path.join(cluster.dir, "server.log")):
                # Each index is measured right after its build (the next build drops it).
                if "sweep" in sections:
                    sweep(cur, method, kind, sql, params, truth_all, results)
                if "clients" in sections:
                    clients(cluster, sql, params, method, results)
            cur.execute("DROP INDEX IF EXISTS items_idx")
        if "inserts" in sections:
            section_inserts(cur, args, dims, results)
        if "filtered" in sections and labels is not None:
            section_filtered(cur, args, base, queries, labels, qtexts, results)
        if "storage" in sections:
            section_storage(cur, args, dims, params, truth_all, results)
        conn.close()
    finally:
        for proc in builders:
            proc.terminate()
            proc.wait(timeout=30)
        results["server_ok"] = cluster.stop()
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    files = plot(results, args.out)
    log(f"== results: {path}; plots: {', '.join(files)}")
    if not results["server_ok"]:
        sys.exit("a backend crashed (see the server log)")


if __name__ == "__main__":
    main()
