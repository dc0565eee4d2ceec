"""The shipped nightly job on Spark in local mode beside keepwell's own run (BENCHMARKS.md).

    python3 benches/spark.py [--size 1000000] [--memory 8g]

On the extracts `make bench` generated (or generates them): each CSV written once as
Parquet (all text; the compiled script casts each column to the job's type), then

- keepwell: `keepwell run nightly` end to end on a fresh store (load, features, rules,
  publish, lists, mail to the outbox folder);
- Spark: `keepwell compile nightly --target spark`, run by PySpark in local mode on the
  machine's cores (`tests/compile/spark_run.py`): sources read from Parquet, features, the
  entity and rule sets cached, entity and results written as Parquet. Peak memory is the sum
  of the resident sets of the Python driver and its JVM, sampled every 0.2 s;
- keepwell from Spark's results: a job with `engine_results:` reading what Spark wrote,
  publishing, listing and mailing as the first run did.

Every account's score and grade from Spark is compared with keepwell's, in the store.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-23"


def rss_of_tree(pid):
    """The resident set of `pid` and every process below it, in MiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def timed(cmd, env=None):
    """Runs `cmd`; returns (seconds, peak MiB of its process tree, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    peak = [0.0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], rss_of_tree(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    seconds = time.monotonic() - started
    sampler.join()
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{stdout}\n{stderr}")
    return seconds, peak[0], stdout


def to_parquet(data, out):
    """Each extract as `<name>.parquet`, every column text, empty cells missing."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    out.mkdir(parents=True, exist_ok=True)
    for csv in sorted(data.glob("*.csv")):
        target = out / f"{csv.stem}.parquet"
        if target.exists():
            continue
        with open(csv) as f:
            names = f.readline().strip().split(",")
        table = pcsv.read_csv(csv, convert_options=pcsv.ConvertOptions(
            column_types={n: "string" for n in names}, strings_can_be_null=True))
        pq.write_table(table, target)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--memory", default="8g", help="Spark's driver memory (local mode: all of Spark)")
    args = ap.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    keepwell = target / "release" / "keepwell"
    work = target / "bench"
    data = work / f"data-{args.size}"
    if not (data / "accounts.csv").exists():
        subprocess.run([keepwell, "demo-data", "--accounts", str(args.size), "--seed", "7", "--as-of", AS_OF,
                        "--out", data], check=True)
    parquet = work / f"parquet-{args.size}"
    started = time.monotonic()
    to_parquet(data, parquet)
    print(f"  extracts as Parquet in {parquet} ({time.monotonic() - started:.1f} s)", flush=True)

    project = work / f"spark-project-{args.size}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    for d in ("jobs", "rules"):
        shutil.copytree(ROOT / d, project / d)
    shutil.copy(ROOT / "keepwell.yaml", project / "keepwell.yaml")
    (project / "fixtures").symlink_to(data)
    results = work / f"spark-results-{args.size}"
    shutil.rmtree(results, ignore_errors=True)

    seconds, rss, _ = timed([keepwell, "-C", project, "-q", "run", "nightly", "--as-of", AS_OF])
    report = json.loads((project / ".keepwell/runs/1/run.json").read_text())
    stages = ", ".join(f"{s['stage']} {s['seconds']:.1f}" for s in report["stages"])
    print(f"  keepwell               {seconds:7.1f} s  {rss:7.0f} MiB  {stages}", flush=True)

    c_seconds, _, _ = timed([keepwell, "-C", project, "-q", "compile", "nightly", "--target", "spark",
                             "--as-of", AS_OF, "--sources", parquet, "--results", results, "--out", project / "compiled"])
    script = project / "compiled" / "nightly.spark.sql"
    s_seconds, s_rss, out = timed([sys.executable, ROOT / "tests/compile/spark_run.py", script],
                                  env={"KW_SPARK_MEMORY": args.memory})
    spark = json.loads(out.strip().splitlines()[-1])
    print(f"  compile                {c_seconds:7.1f} s", flush=True)
    print(f"  Spark (local[2])       {s_seconds:7.1f} s  {s_rss:7.0f} MiB  statements {spark['seconds']:.1f} s "
          f"(the rest: starting the JVM and the session)", flush=True)

    nightly = (project / "jobs/nightly.yaml").read_text()
    (project / "jobs/from_spark.yaml").write_text(
        nightly.replace("name: nightly\n", f"name: from_spark\nengine_results: {results}\n", 1))
    e_seconds, e_rss, _ = timed([keepwell, "-C", project, "-q", "run", "from_spark", "--as-of", AS_OF])
    report = json.loads((project / ".keepwell/runs/2/run.json").read_text())
    stages = ", ".join(f"{s['stage']} {s['seconds']:.1f}" for s in report["stages"])
    print(f"  keepwell from Spark    {e_seconds:7.1f} s  {e_rss:7.0f} MiB  {stages}", flush=True)

    _, _, differ = timed([keepwell, "-C", project, "query", "--format", "csv",
                          "SELECT count(*) AS compared, count(*) FILTER (WHERE a.grade IS DISTINCT FROM b.grade "
                          "OR abs(a.score - b.score) > 1e-9 OR (a.score IS NULL) <> (b.score IS NULL)) AS differ "
                          "FROM outcomes a JOIN outcomes b USING (account_id, rule_set) "
                          "WHERE a.run_id = 1 AND b.run_id = 2"])
    print(f"  scores and grades compared (keepwell, Spark): {differ.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
