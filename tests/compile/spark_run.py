"""Runs a script written by `keepwell compile --target spark` on Spark in local mode.

    python3 spark_run.py SCRIPT [--conf key=value ...]

The script's statements each end with a line ending in `;`. Prints the seconds each took
as JSON on the last line. Exits 3 when PySpark or Java is missing, so a test can skip.
"""
import json
import os
import shutil
import sys
import time


def main():
    args = sys.argv[1:]
    script = args[0]
    conf = dict(a.split("=", 1) for a in args[2::2]) if len(args) > 1 else {}
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        print("no Java runtime", file=sys.stderr)
        sys.exit(3)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print("PySpark is not installed", file=sys.stderr)
        sys.exit(3)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("keepwell-compiled")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", os.environ.get("KW_SPARK_MEMORY", "4g"))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in conf.items():
        spark.conf.set(key, value)
    text = open(script, encoding="utf-8").read()
    statements, current = [], []
    for line in text.splitlines():
        if line.startswith("--") and not current:
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    timings = []
    started = time.time()
    for statement in statements:
        t = time.time()
        spark.sql(statement).collect()
        timings.append(round(time.time() - t, 3))
    spark.stop()
    print(json.dumps({"statements": len(statements), "seconds": round(time.time() - started, 3), "each": timings}))


if __name__ == "__main__":
    main()
