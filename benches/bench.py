#!/usr/bin/env python3
"""`make bench`: the shipped nightly job at 100k and 1M accounts against two baselines.

For each size it generates the extracts once (`keepwell demo-data`, seed 7), then runs, one
after the other on the same files:
  - keepwell:  `keepwell run nightly` end to end (load, features, rules, publish, lists,
               mail to the outbox folder), on a fresh store;
  - SQL:       the same job hand-written for DuckDB (benches/load.sql, the job's feature SQL,
               benches/rules.sql), on the DuckDB keepwell links;
  - pandas:    the same job as an analyst would write it in vectorised pandas
               (benches/pandas_baseline.py), when pandas is installed.
Wall time and peak RSS come from wait4(2) on each process; stage times from keepwell's
run.json and the baselines' own reports. The figures go to stdout and, with --write, into
BENCHMARKS.md between the `bench:start` and `bench:end` markers.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-23"


def run(cmd, cwd=None):
    """Runs a command; returns (seconds, peak RSS in MB, stdout)."""
    import tempfile
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{stdout}\n{stderr}")
    return seconds, usage.ru_maxrss / 1024, stdout


def rule_count():
    """Rules, scorecard measures and classes in the shipped rule sets, plus one per script."""
    n = 0
    for f in sorted((ROOT / "rules").glob("*.yaml")):
        text = f.read_text().split("\ntests:")[0]
        n += len(re.findall(r"^\s+- (?:id|class):", text, re.M))
        n += 1 if re.search(r"^script:", text, re.M) else 0
    return n


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, {platform.system()} {platform.release()}"


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    msgs = subprocess.run(
        ["cargo", "bench", "--bench", "sql_baseline", "--no-run", "--message-format=json", "--quiet"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    for line in msgs.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "sql_baseline" and m.get("executable"):
            return m["executable"]
    sys.exit("could not find the sql_baseline bench binary")


def target_dir():
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return Path(json.loads(meta)["target_directory"])


def bench(size, work, keepwell, sql_bin, python, repeat):
    data = work / f"data-{size}"
    if not (data / "accounts.csv").exists():
        shutil.rmtree(data, ignore_errors=True)
        seconds, rss, _ = run([keepwell, "demo-data", "--accounts", str(size), "--seed", "7", "--as-of", AS_OF,
                               "--out", str(data)])
        print(f"  generated {size:,} accounts in {seconds:.1f} s ({rss:.0f} MB)", flush=True)
    project = work / f"project-{size}"
    runs = {"keepwell": [], "sql": [], "pandas": []}
    for attempt in range(repeat):
        # The previous run's project is moved aside and deleted once the bench is done:
        # deleting its thousands of files just before a run made ext4 search past their
        # freshly freed inodes for every file the run creates (a second of the lists stage).
        if project.exists():
            project.rename(work / f".trash-{size}-{time.time_ns()}")
        project.mkdir(parents=True)
        for d in ("jobs", "rules"):
            shutil.copytree(ROOT / d, project / d)
        (project / "fixtures").symlink_to(data)

        seconds, rss, _ = run([keepwell, "-C", str(project), "-q", "run", "nightly", "--as-of", AS_OF])
        report = json.loads((project / ".keepwell/runs/1/run.json").read_text())
        k = {"wall": seconds, "rss": rss, "stages": {s["stage"]: s["seconds"] for s in report["stages"]},
             "status": report["status"], "mails": report.get("mails")}
        runs["keepwell"].append(k)
        print(f"  keepwell  {seconds:7.1f} s  {rss:7.0f} MB  " +
              ", ".join(f"{n} {v:.1f}" for n, v in k["stages"].items()), flush=True)

        out = work / f"sql-{size}"
        shutil.rmtree(out, ignore_errors=True)
        seconds, rss, stdout = run([sql_bin, str(data), str(out), AS_OF, "--compare",
                                    str(project / ".keepwell/keepwell.duckdb")])
        sql = {"wall": seconds, "rss": rss, **json.loads(stdout.strip().splitlines()[-1])}
        runs["sql"].append(sql)
        print(f"  SQL       {seconds:7.1f} s  {rss:7.0f} MB  load {sql['load']:.1f}, features "
              f"{sql['features']:.1f}, rules {sql['rules']:.1f}", flush=True)

        if python:
            out = work / f"pandas-{size}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, rss, stdout = run([python, str(ROOT / "benches/pandas_baseline.py"), str(data), str(out), AS_OF,
                                        "--compare", str(work / f"sql-{size}/scores.parquet")])
            runs["pandas"].append({"wall": seconds, "rss": rss, **json.loads(stdout.strip().splitlines()[-1])})
            print(f"  pandas    {seconds:7.1f} s  {rss:7.0f} MB", flush=True)
    # Each tool's median run by wall time, with the range of its walls; peak RSS is the
    # largest of its runs.
    result = {"size": size}
    for name, rs in runs.items():
        if rs:
            median = dict(sorted(rs, key=lambda r: r["wall"])[len(rs) // 2])
            median["walls"] = sorted(r["wall"] for r in rs)
            median["rss"] = max(r["rss"] for r in rs)
            result[name] = median
    return result


def wall(r):
    """The median wall time, with the range when there were several runs."""
    walls = r.get("walls", [r["wall"]])
    return f"{r['wall']:.1f} s" + (f" ({walls[0]:.1f}-{walls[-1]:.1f})" if len(walls) > 1 else "")


def markdown(results, rules, command):
    lines = [
        f"Machine: {machine()}. Command: `{command}`. Measured {time.strftime('%Y-%m-%d')}.",
        "",
        f"The shipped nightly job: 12 sources, 8 feature views, 9 rule sets with {rules} rules, measures",
        "and classes, two escalation lists, the executive report, mail to the outbox folder.",
        f"Each tool ran {len(results[0]['keepwell'].get('walls', [1]))} times per size, interleaved; each row is "
        "its median run by wall time (peak RSS: the largest of its runs).",
        "",
        "| accounts | run | wall (median, range) | peak RSS | load | features | rules | publish | outputs | deliver | rule evaluations/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        k = r["keepwell"]
        st = k["stages"]
        evals = r["size"] * rules / st["rules"] if st.get("rules") else 0
        lines.append(f"| {r['size']:,} | keepwell | {wall(k)} | {k['rss']:,.0f} MB | {st.get('load', 0):.1f} | "
                     f"{st.get('features', 0):.1f} | {st.get('rules', 0):.1f} | {st.get('publish', 0):.1f} | "
                     f"{st.get('outputs', 0):.1f} | {st.get('deliver', 0):.1f} | {evals / 1e6:.1f}M |")
        s = r["sql"]
        evals = r["size"] * rules / s["rules"] if s["rules"] else 0
        lines.append(f"| {r['size']:,} | SQL baseline | {wall(s)} | {s['rss']:,.0f} MB | {s['load']:.1f} | "
                     f"{s['features']:.1f} | {s['rules']:.1f} | | | | {evals / 1e6:.1f}M |")
        if "pandas" in r:
            p = r["pandas"]
            evals = r["size"] * rules / p["rules"] if p.get("rules") else 0
            lines.append(f"| {r['size']:,} | pandas baseline | {wall(p)} | {p['rss']:,.0f} MB | "
                         f"{p['load']:.1f} | {p['features']:.1f} | {p['rules']:.1f} | | | | {evals / 1e6:.1f}M |")
    lines += ["", "| accounts | keepwell ÷ SQL (target ≤ 1.3) | pandas ÷ keepwell (target ≥ 2) | "
              "keepwell RSS (target ≤ 1.5 GB, ≤ half of pandas) | rules: keepwell evaluations/s (target ≥ 100M) | "
              "grades the SQL baseline reproduces |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        k, s = r["keepwell"], r["sql"]
        pandas = f"{r['pandas']['wall'] / k['wall']:.2f}" if "pandas" in r else "not run"
        half = f", pandas {r['pandas']['rss']:,.0f} MB" if "pandas" in r else ""
        agree = s.get("agreement", {})
        worst = min(agree.values()) if agree else 0
        lines.append(f"| {r['size']:,} | {k['wall'] / s['wall']:.2f} | {pandas} | {k['rss']:,.0f} MB{half} | "
                     f"{r['size'] * rules / k['stages']['rules'] / 1e6:.1f}M | "
                     f"{'all' if worst == 1 else f'{worst:.2%} in the worst rule set'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated account counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool per size; the median is reported")
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    sql_bin = build()
    work = target_dir() / "bench"
    work.mkdir(parents=True, exist_ok=True)
    keepwell = str(target_dir() / "release/keepwell")
    python = sys.executable
    try:
        subprocess.run([python, "-c", "import pandas, pyarrow"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        print("pandas is not installed: the pandas baseline is skipped (pip install pandas pyarrow)")
        python = None
    rules = rule_count()
    results = []
    for size in sizes:
        print(f"{size:,} accounts", flush=True)
        results.append(bench(size, work, keepwell, sql_bin, python, args.repeat))
    command = "make bench" + (f" BENCH_SIZES={args.sizes}" if args.sizes != "100000,1000000" else "")
    text = markdown(results, rules, command)
    print()
    print(text)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    for trash in work.glob(".trash-*"):
        shutil.rmtree(trash, ignore_errors=True)
    if args.write:
        path = ROOT / "BENCHMARKS.md"
        doc = path.read_text()
        start, end = "<!-- bench:start -->", "<!-- bench:end -->"
        if start in doc and end in doc:
            doc = doc[: doc.index(start) + len(start)] + "\n" + text + "\n" + doc[doc.index(end):]
        else:
            doc += f"\n{start}\n{text}\n{end}\n"
        path.write_text(doc)
        print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
