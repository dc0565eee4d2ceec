#!/usr/bin/env python3
"""Two builds of keepwell, one project, the same results: a check for changes meant to keep
behaviour as it is (a refactoring, a speed-up).

    python3 benches/same_results.py --base REV [--accounts 100000] [--work DIR]

It builds REV (in a git worktree, into the same target folder) and the working tree, generates
the demo extracts once (`keepwell demo-data`, seed 7), and runs the nightly job with each build
on two days, in a project of its own. Then it compares, build against build:

- the stored tables (outcomes, accounts, rule errors, rejects, escalations, the outbox's rows
  with each message decoded), without run times;
- every file of each run's folder (lists, report, charts) but `run.json`'s timings and the
  entity snapshot, whose rows are compared instead;
- every mail in the outbox folder, decoded: headers but Date and Message-ID, each part's text.

It prints what differs and exits 1, or prints what it compared and exits 0.
"""

import argparse
import email
import email.policy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAYS = ["2026-11-23", "2026-11-24"]


def sh(cmd, **kw):
    print("  $ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def target_dir():
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return Path(json.loads(meta.stdout)["target_directory"])


def build(tree, out):
    """Builds the release binary of the checkout at `tree` and copies it to `out`."""
    sh(["cargo", "build", "--release", "--quiet"], cwd=tree,
       env={**os.environ, "DUCKDB_LIB_DIR": str(ROOT / ".duckdb/1.5.6")})
    binary = target_dir() / "release/keepwell"
    shutil.copy2(binary, out)
    # The binary finds libduckdb through an rpath relative to the checkout that built it.
    return out


def base_build(rev, work):
    out = work / f"keepwell-{rev}"
    if out.exists():
        return out
    tree = work / "base-tree"
    if tree.exists():
        sh(["git", "worktree", "remove", "--force", tree], cwd=ROOT)
    sh(["git", "worktree", "add", "--detach", tree, rev], cwd=ROOT)
    try:
        (tree / ".duckdb").symlink_to(ROOT / ".duckdb")
        return build(tree, out)
    finally:
        sh(["git", "worktree", "remove", "--force", tree], cwd=ROOT)


def run_project(keepwell, data, project):
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    for d in ("jobs", "rules"):
        shutil.copytree(ROOT / d, project / d)
    (project / "fixtures").symlink_to(data)
    for day in DAYS:
        sh([keepwell, "-C", project, "-q", "run", "nightly", "--as-of", day])


def duckdb_module():
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sh([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "duckdb"])
    import duckdb
    return duckdb


TABLES = {
    "outcomes": "SELECT as_of, account_id, rule_set, score, grade, grade_since, fired, reasons, tags, errors "
                "FROM outcomes ORDER BY ALL",
    "accounts": "SELECT run_id, account_id, name, owner, arr FROM accounts ORDER BY ALL",
    "rule_errors": "SELECT * FROM rule_errors ORDER BY ALL",
    "rejects": "SELECT * FROM rejects ORDER BY ALL",
    "escalations": "SELECT * FROM escalations ORDER BY ALL",
    "runs": "SELECT run_id, job, as_of, status, published, error, accounts, warnings, "
            "row_counts FROM runs ORDER BY ALL",
    "outbox": "SELECT job, as_of, output, recipient, run_id, subject, sender, envelope_to, status, attempts, "
              "message FROM outbox ORDER BY job, as_of, output, recipient",
}


def decoded(raw):
    """A mail as text that ignores what differs between two sendings: Date, Message-ID and
    the MIME boundaries."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    lines = []
    for part in msg.walk():
        for k, v in part.items():
            if k.lower() in ("date", "message-id", "content-type"):
                continue
            lines.append(f"{k}: {v}")
        lines.append(f"content-type: {part.get_content_type()}")
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            lines.append(hashlib.sha256(payload).hexdigest() + f" ({len(payload)} bytes)")
    return "\n".join(lines)


def store_rows(duckdb, project):
    con = duckdb.connect(str(project / ".keepwell/keepwell.duckdb"), read_only=True)
    out = {}
    for name, sql in TABLES.items():
        rows = con.execute(sql).fetchall()
        if name == "outbox":
            rows = [r[:-1] + (decoded(bytes(r[-1])),) for r in rows]
        out[name] = rows
    for run in sorted((project / ".keepwell/runs").iterdir()):
        snapshot = run / "entity.parquet"
        if snapshot.exists():
            out[f"runs/{run.name}/entity.parquet"] = con.execute(
                f"SELECT * FROM read_parquet('{snapshot}') ORDER BY ALL").fetchall()
    con.close()
    return out


def run_files(project):
    files = {}
    for path in sorted((project / ".keepwell").rglob("*")):
        rel = path.relative_to(project / ".keepwell").as_posix()
        if not path.is_file() or rel.endswith(("entity.parquet", ".duckdb", ".wal")) or "/spill/" in rel:
            continue
        if rel.endswith("run.json"):
            r = json.loads(path.read_text())
            for k in ("started_at", "finished_at", "stages", "rule_sets"):
                r.pop(k, None)
            files[rel] = json.loads(json.dumps(r).replace(str(project), "<project>"))
        elif rel.endswith(".eml"):
            files[rel] = decoded(path.read_bytes())
        else:
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def compare(what, a, b):
    problems = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            problems.append(f"{what} {key}: only in the {'new' if key in b else 'base'} build")
        elif isinstance(a[key], dict):
            # run.json: a field one build adds is new, not a difference; shared fields must agree.
            shared = set(a[key]) & set(b[key])
            if any(a[key][k] != b[key][k] for k in shared):
                problems.append(f"{what} {key}: differs in " + ", ".join(k for k in sorted(shared) if a[key][k] != b[key][k]))
        elif a[key] != b[key]:
            x, y = a[key], b[key]
            if isinstance(x, list):
                diff = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
                problems.append(f"{what} {key}: {len(x)} and {len(y)} rows, first difference at row {diff}: "
                                f"{x[diff] if diff < len(x) else None!r} against {y[diff] if diff < len(y) else None!r}")
            else:
                problems.append(f"{what} {key}: differs")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the git revision to compare the working tree with")
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/keepwell-same-results"))
    args = p.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    duckdb = duckdb_module()
    print(f"building {args.base} and the working tree", flush=True)
    base = base_build(args.base, work)
    new = build(ROOT, work / "keepwell-new")
    data = work / f"data-{args.accounts}"
    if not (data / "accounts.csv").exists():
        sh([new, "demo-data", "--accounts", args.accounts, "--seed", "7", "--as-of", DAYS[0], "--out", data])
    results = {}
    for name, binary in (("base", base), ("new", new)):
        print(f"running the {name} build", flush=True)
        project = work / f"project-{name}"
        run_project(binary, data, project)
        results[name] = (store_rows(duckdb, project), run_files(project))
    problems = compare("table", results["base"][0], results["new"][0])
    problems += compare("file", results["base"][1], results["new"][1])
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    rows = sum(len(v) for v in results["new"][0].values())
    mails = sum(1 for k in results["new"][1] if k.endswith(".eml"))
    print(f"identical: {len(results['new'][0])} tables ({rows:,} rows), {len(results['new'][1])} files "
          f"of which {mails:,} mails, over {len(DAYS)} days at {args.accounts:,} accounts")


if __name__ == "__main__":
    main()
