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
NEXT_DAY = "2026-11-24"


def run(cmd, cwd=None):
    """Runs a command; returns (seconds, peak RSS in MiB, stdout)."""
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
    """Builds keepwell and the two bench binaries; returns the binaries' paths by name."""
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    found = {}
    for name in ("sql_baseline", "rule_evaluation"):
        msgs = subprocess.run(
            ["cargo", "bench", "--bench", name, "--no-run", "--message-format=json", "--quiet"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        for line in msgs.splitlines():
            m = json.loads(line)
            if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
                found[name] = m["executable"]
        if name not in found:
            sys.exit(f"could not find the {name} bench binary")
    return found


def target_dir():
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return Path(json.loads(meta)["target_directory"])


def bench(size, work, keepwell, sql_bin, python, repeat):
    data = work / f"data-{size}"
    # Generated once and kept; again when the generator writes a file the data lacks.
    if not all((data / f).exists() for f in ("accounts.csv", "slack_routes.csv")):
        shutil.rmtree(data, ignore_errors=True)
        seconds, rss, _ = run([keepwell, "demo-data", "--accounts", str(size), "--seed", "7", "--as-of", AS_OF,
                               "--out", str(data)])
        print(f"  generated {size:,} accounts in {seconds:.1f} s ({rss:.0f} MiB)", flush=True)
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
        shutil.copy(ROOT / "keepwell.yaml", project / "keepwell.yaml")
        (project / "fixtures").symlink_to(data)

        seconds, rss, _ = run([keepwell, "-C", str(project), "-q", "run", "nightly", "--as-of", AS_OF])
        report = json.loads((project / ".keepwell/runs/1/run.json").read_text())
        k = {"wall": seconds, "rss": rss, "stages": {s["stage"]: s["seconds"] for s in report["stages"]},
             "status": report["status"], "mails": report.get("mails")}
        runs["keepwell"].append(k)
        print(f"  keepwell  {seconds:7.1f} s  {rss:7.0f} MiB  " +
              ", ".join(f"{n} {v:.1f}" for n, v in k["stages"].items()), flush=True)

        out = work / f"sql-{size}"
        shutil.rmtree(out, ignore_errors=True)
        seconds, rss, stdout = run([sql_bin, str(data), str(out), AS_OF, "--compare",
                                    str(project / ".keepwell/keepwell.duckdb")])
        sql = {"wall": seconds, "rss": rss, **json.loads(stdout.strip().splitlines()[-1])}
        runs["sql"].append(sql)
        print(f"  SQL       {seconds:7.1f} s  {rss:7.0f} MiB  load {sql['load']:.1f}, features "
              f"{sql['features']:.1f}, rules {sql['rules']:.1f}", flush=True)

        if python:
            out = work / f"pandas-{size}"
            shutil.rmtree(out, ignore_errors=True)
            seconds, rss, stdout = run([python, str(ROOT / "benches/pandas_baseline.py"), str(data), str(out), AS_OF,
                                        "--compare", str(work / f"sql-{size}/scores.parquet")])
            runs["pandas"].append({"wall": seconds, "rss": rss, **json.loads(stdout.strip().splitlines()[-1])})
            print(f"  pandas    {seconds:7.1f} s  {rss:7.0f} MiB", flush=True)
    # The next day's run on the last project's store: a nightly run with history reads the
    # earlier run's outcomes (grade_since, movements, prev), which a fresh store has none of.
    seconds, rss, _ = run([keepwell, "-C", str(project), "-q", "run", "nightly", "--as-of", NEXT_DAY])
    report = json.loads((project / ".keepwell/runs/2/run.json").read_text())
    next_day = {"wall": seconds, "rss": rss, "walls": [seconds], "stages": {s["stage"]: s["seconds"] for s in report["stages"]},
                "status": report["status"]}
    if report["status"] == "failed":
        raise SystemExit(f"the next day's run failed: {report.get('error')}")
    print(f"  keepwell, the next day  {seconds:7.1f} s  {rss:7.0f} MiB  " +
          ", ".join(f"{n} {v:.1f}" for n, v in next_day["stages"].items()), flush=True)
    # Each tool's median run by wall time, with the range of its walls; peak RSS is the
    # largest of its runs.
    result = {"size": size, "next_day": next_day}
    for name, rs in runs.items():
        if rs:
            median = dict(sorted(rs, key=lambda r: r["wall"])[len(rs) // 2])
            median["walls"] = sorted(r["wall"] for r in rs)
            median["rss"] = max(r["rss"] for r in rs)
            result[name] = median
    return result


def sixty_rules():
    """The performance issue's workload: 60 simple rules, points summed, as keepwell rules
    and as the hand-written SQL sum of one CASE WHEN per rule (the same conditions)."""
    import random
    r = random.Random(60)
    yaml, sql = [], []
    for i in range(60):
        a, b = r.sample(range(12), 2)
        t, u = r.randint(10, 90), r.randint(10, 90)
        f = r.randint(12, 17)
        rhai, cond = [
            (f"m{a} > {t}", f"m{a} > {t}"),
            (f"m{a} >= {t} && m{b} < {u}", f"m{a} >= {t} AND m{b} < {u}"),
            (f"f{f} * 2 > {t}.5", f"f{f} * 2 > {t}.5"),
            (f'segment in ["ent", "strategic"] && m{a} < {t}', f"segment IN ('ent', 'strategic') AND m{a} < {t}"),
            (f"is_missing(m{a}) || m{b} + m{a} > {t + 50}", f"m{a} IS NULL OR m{b} + m{a} > {t + 50}"),
        ][i % 5]
        points = r.choice([-10, -5, 5, 10, 15, 20])
        yaml.append(f"  - id: r{i:02}\n    when: {rhai}\n    points: {points}\n")
        sql.append(f"CASE WHEN {cond} THEN {points} ELSE 0 END")
    rules = ("description: Sixty simple rules, points summed (the performance issue's workload).\n"
             "score: { base: 0 }\ngrades:\n  - { grade: high, min: 50 }\n  - { grade: low }\nrules:\n" + "".join(yaml))
    columns = "".join(f"      m{k}: INTEGER\n" for k in range(12)) + "".join(f"      f{k}: DOUBLE\n" for k in range(12, 18))
    job = ("name: points\nsources:\n  accounts:\n    path: data/accounts.parquet\n    primary_key: account_id\n"
           f"    columns:\n      account_id: VARCHAR\n{columns}      segment: VARCHAR\n"
           "entity:\n  view: accounts\n  key: account_id\nrule_sets: [points]\n")
    return rules, job, " + ".join(sql)


def rules_bench(size, work, keepwell, rb_bin, repeat):
    """keepwell's rules stage against one hand-written query on the issue's workload."""
    project = work / f"rules-{size}"
    if not (project / "data/accounts.parquet").exists():
        run([rb_bin, project, "--generate", size])
    rules, job, sql = sixty_rules()
    for path, text in (("rules/points.yaml", rules), ("jobs/points.yaml", job), ("rules.sql", sql)):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    keepwell_runs, sql_runs = [], []
    for _ in range(repeat):
        shutil.rmtree(project / ".keepwell", ignore_errors=True)
        seconds, rss, _ = run([keepwell, "-C", project, "-q", "run", "points", "--as-of", AS_OF])
        report = json.loads((project / ".keepwell/runs/1/run.json").read_text())
        stages = {s["stage"]: s["seconds"] for s in report["stages"]}
        keepwell_runs.append({"wall": seconds, "rss": rss, "rules": stages["rules"]})
        _, _, stdout = run([rb_bin, project, project / "rules.sql", "--compare", project / ".keepwell/keepwell.duckdb"])
        sql_runs.append(json.loads(stdout.strip().splitlines()[-1]))
        print(f"  60 rules: keepwell rules stage {stages['rules']:.2f} s, one SQL query {sql_runs[-1]['rules']:.2f} s, "
              f"{sql_runs[-1]['differ']} scores differ", flush=True)
    median = lambda rs: sorted(rs, key=lambda r: r["rules"])[len(rs) // 2]
    return {"size": size, "keepwell": median(keepwell_runs), "sql": median(sql_runs),
            "keepwell_range": [min(r["rules"] for r in keepwell_runs), max(r["rules"] for r in keepwell_runs)],
            "differ": max(r["differ"] for r in sql_runs)}


def wall(r):
    """The median wall time, with the range when there were several runs."""
    walls = r.get("walls", [r["wall"]])
    return f"{r['wall']:.1f} s" + (f" ({walls[0]:.1f}-{walls[-1]:.1f})" if len(walls) > 1 else "")


def rules_markdown(micro):
    lines = [
        "",
        "Rule evaluation alone, on the performance issue's own workload (`benches/rule_evaluation.rs`):",
        "generated accounts × 60 simple rules (comparisons, `&&`, `||`, `in`, `is_missing`, arithmetic),",
        "points summed. keepwell: the rules stage of `keepwell run` (SQL in the warehouse, then the",
        "outcomes assembled with fired rules, grades and scores); SQL: one hand-written query, a CASE WHEN",
        "per rule summed, the score only. Medians of the runs.",
        "",
        "| accounts | keepwell rules stage | keepwell evaluations/s | one SQL query | SQL evaluations/s | scores that differ |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in micro:
        k, s, n = m["keepwell"], m["sql"], m["size"] * 60
        lo, hi = m["keepwell_range"]
        lines.append(f"| {m['size']:,} | {k['rules']:.2f} s ({lo:.2f}-{hi:.2f}) | {n / k['rules'] / 1e6:.0f}M | "
                     f"{s['rules']:.2f} s | {n / s['rules'] / 1e6:.0f}M | {m['differ']} |")
    return lines


def gb(mib):
    """MiB (as ru_maxrss gives them, in KiB / 1024) in GB of 10^9 bytes, the targets' unit."""
    return f"{mib * 1024 * 1024 / 1e9:.2f} GB"


def markdown(results, micro, rules, command):
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
        lines.append(f"| {r['size']:,} | keepwell | {wall(k)} | {k['rss']:,.0f} MiB | {st.get('load', 0):.1f} | "
                     f"{st.get('features', 0):.1f} | {st.get('rules', 0):.1f} | {st.get('publish', 0):.1f} | "
                     f"{st.get('outputs', 0):.1f} | {st.get('deliver', 0):.1f} | {evals / 1e6:.1f}M |")
        if "next_day" in r:
            k = r["next_day"]
            st = k["stages"]
            evals = r["size"] * rules / st["rules"] if st.get("rules") else 0
            lines.append(f"| {r['size']:,} | keepwell, the next day (one run) | {wall(k)} | {k['rss']:,.0f} MiB | "
                         f"{st.get('load', 0):.1f} | {st.get('features', 0):.1f} | {st.get('rules', 0):.1f} | "
                         f"{st.get('publish', 0):.1f} | {st.get('outputs', 0):.1f} | {st.get('deliver', 0):.1f} | "
                         f"{evals / 1e6:.1f}M |")
        s = r["sql"]
        evals = r["size"] * rules / s["rules"] if s["rules"] else 0
        lines.append(f"| {r['size']:,} | SQL baseline | {wall(s)} | {s['rss']:,.0f} MiB | {s['load']:.1f} | "
                     f"{s['features']:.1f} | {s['rules']:.1f} | | | | {evals / 1e6:.1f}M |")
        if "pandas" in r:
            p = r["pandas"]
            evals = r["size"] * rules / p["rules"] if p.get("rules") else 0
            lines.append(f"| {r['size']:,} | pandas baseline | {wall(p)} | {p['rss']:,.0f} MiB | "
                         f"{p['load']:.1f} | {p['features']:.1f} | {p['rules']:.1f} | | | | {evals / 1e6:.1f}M |")
    lines += ["", "| accounts | keepwell ÷ SQL (target ≤ 1.3) | pandas ÷ keepwell (target ≥ 2) | "
              "keepwell RSS (target ≤ 1.5 GB, ≤ half of pandas) | rules: keepwell evaluations/s (target ≥ 100M) | "
              "grades the SQL baseline reproduces |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        k, s = r["keepwell"], r["sql"]
        pandas = f"{r['pandas']['wall'] / k['wall']:.2f}" if "pandas" in r else "not run"
        half = f", pandas {r['pandas']['rss']:,.0f} MiB" if "pandas" in r else ""
        agree = s.get("agreement", {})
        worst = min(agree.values()) if agree else 0
        lines.append(f"| {r['size']:,} | {k['wall'] / s['wall']:.2f} | {pandas} | {k['rss']:,.0f} MiB = {gb(k['rss'])}{half} | "
                     f"{r['size'] * rules / k['stages']['rules'] / 1e6:.1f}M | "
                     f"{'all' if worst == 1 else f'{worst:.2%} in the worst rule set'} |")
    return "\n".join(lines + rules_markdown(micro))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated account counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each tool per size; the median is reported")
    ap.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    ap.add_argument("--rules-only", action="store_true", help="only the 60-rule evaluation; prints, never writes")
    ap.add_argument("--from-results", action="store_true",
                    help="run nothing: print (and with --write, write) the tables of the last run's results.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.from_results:
        saved = json.loads((target_dir() / "bench" / "results.json").read_text())
        sizes_run = ",".join(str(r["size"]) for r in saved["job"])
        command = "make bench" + (f" BENCH_SIZES={sizes_run}" if sizes_run != "100000,1000000" else "")
        text = markdown(saved["job"], saved["rules"], rule_count(), command)
        print(text)
        if args.write:
            write_benchmarks(text)
        return
    bins = build()
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
    if args.rules_only:
        micro = [rules_bench(size, work, keepwell, bins["rule_evaluation"], args.repeat) for size in sizes]
        print("\n".join(rules_markdown(micro)))
        return
    results = []
    for size in sizes:
        print(f"{size:,} accounts", flush=True)
        results.append(bench(size, work, keepwell, bins["sql_baseline"], python, args.repeat))
    micro = []
    for size in sizes:
        print(f"{size:,} accounts × 60 rules", flush=True)
        micro.append(rules_bench(size, work, keepwell, bins["rule_evaluation"], args.repeat))
    command = "make bench" + (f" BENCH_SIZES={args.sizes}" if args.sizes != "100000,1000000" else "")
    text = markdown(results, micro, rules, command)
    print()
    print(text)
    (work / "results.json").write_text(json.dumps({"job": results, "rules": micro}, indent=2))
    for trash in work.glob(".trash-*"):
        shutil.rmtree(trash, ignore_errors=True)
    if args.write:
        write_benchmarks(text)


def write_benchmarks(text):
    """Puts `text` between BENCHMARKS.md's bench markers."""
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
