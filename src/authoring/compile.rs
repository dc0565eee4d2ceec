//! `keepwell compile`: a job as one SQL script for another engine. The feature queries, the
//! entity, every rule set as the vectorised path evaluates it (one query each, reading the
//! sets it depends on by account), and the results in one long table: an account's row per
//! rule set with its score, grade, fired rules, tags and reasons. For `spark` the script is
//! Spark SQL (see [`crate::warehouse::spark`]); for `duckdb` it is the SQL keepwell runs, so
//! the two can be compared. Both end by writing `entity` and `results` as Parquet, which a
//! job reads back with `engine_results:` to publish, report and mail.

use chrono::NaiveDate;

use crate::config::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::config::job::{Job, Source};
use crate::rules::sql::{AS_OF_VARIABLE, SetQuery, assemble, dep_view};
use crate::run::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Duckdb,
    Spark,
}

/// Where the compiled script reads and writes, and for which day.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// The day the script scores for; `None`: Spark's `${as_of}`, set when it runs.
    pub as_of: Option<NaiveDate>,
    /// A folder of Parquet, one file or folder per source (`accounts.parquet` or
    /// `accounts/`), read as the sources with the job's columns; `None`: the sources are
    /// tables of the session already.
    pub sources: Option<String>,
    /// The folder the script writes `entity` and `results` to.
    pub results: String,
}

/// The compiled script and what compiling it found worth saying.
pub struct Compiled {
    pub script: String,
    pub warnings: Diagnostics,
    pub rule_sets: usize,
}

/// The job of `plan` as one script for `options.target`; every rule or query that does not
/// translate is a located error.
pub fn compile(plan: &Plan, as_of: NaiveDate, options: &Options) -> Result<Compiled, Diagnostics> {
    let mut diags = Diagnostics::default();
    let job = &plan.job;
    let key = &job.entity.key;
    let queries: Vec<SetQuery> = plan
        .rule_sets
        .iter()
        .filter_map(|set| assemble(set, &plan.schema, &plan.lookups, as_of, key, &plan.templates, &mut diags))
        .collect();
    let mut w = Writer { target: options.target, as_of: as_of_sql(options), out: String::new(), diags: &mut diags };
    w.header(job, options);
    if let Some(folder) = &options.sources {
        for source in &job.sources {
            w.source(source, folder);
        }
    }
    for f in &job.features {
        let sql = f.sql.trim().trim_end_matches(';');
        if let Some(sql) = w.query(sql, |line, column, message| {
            Diagnostic::error(Code::NotPortable, f.file.span(line.max(1), column.max(1), 1), message)
        }) {
            w.view(&f.name, &sql);
        }
    }
    let entity = format!("SELECT * FROM {}", w.ident(&job.entity.view));
    let entity_folder = format!("{}/entity", options.results);
    w.kept("kw_entity", &entity, &entity_folder);
    for q in &queries {
        let file = &plan.rule_sets.iter().find(|s| s.name == q.name).map(|s| s.file.start());
        if let Some(sql) = w.query(&q.sql, |_, _, message| {
            let span = file.clone().unwrap_or_else(|| job.file.start());
            Diagnostic::error(Code::NotPortable, span, format!("rule set `{}`: {message}", q.name))
        }) {
            let view = dep_view(&q.name);
            let folder = format!("{}/stages/{view}", options.results);
            w.kept(&view, &sql, &folder);
        }
    }
    let results: Vec<String> = queries
        .iter()
        .map(|q| {
            format!(
                "SELECT kw_key AS account, {} AS rule_set, score, grade, fired, tags, reasons, {AS_OF_VARIABLE} AS as_of FROM {}",
                crate::warehouse::sql_string(&q.name),
                quote(&dep_view(&q.name))
            )
        })
        .collect();
    if !results.is_empty()
        && let Some(sql) =
            w.query(&results.join("\nUNION ALL\n"), |_, _, m| Diagnostic::error(Code::NotPortable, job.file.start(), m))
    {
        if w.target == Target::Duckdb {
            w.write_parquet("SELECT * FROM kw_entity", &entity_folder);
        }
        w.write_parquet(&sql, &format!("{}/results", options.results));
    }
    let script = std::mem::take(&mut w.out);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Compiled { script, warnings: diags, rule_sets: queries.len() })
}

/// The Spark SQL of the run's day.
fn as_of_sql(options: &Options) -> String {
    match (options.target, options.as_of) {
        (_, Some(d)) => format!("DATE '{}'", d.format("%Y-%m-%d")),
        (Target::Spark, None) => "CAST('${as_of}' AS DATE)".into(),
        (Target::Duckdb, None) => AS_OF_VARIABLE.into(),
    }
}

struct Writer<'d> {
    target: Target,
    as_of: String,
    out: String,
    diags: &'d mut Diagnostics,
}

impl Writer<'_> {
    fn header(&mut self, job: &Job, options: &Options) {
        let target = match self.target {
            Target::Duckdb => "duckdb",
            Target::Spark => "spark",
        };
        self.out.push_str(&format!(
            "-- Job `{}` compiled by keepwell {} for {target}: its features, its entity and its {} rule set(s),\n\
             -- writing {}/entity and {}/results as Parquet. Generated: edit the job and its rules, not this file.\n",
            job.name,
            env!("CARGO_PKG_VERSION"),
            job.rule_sets.len(),
            options.results,
            options.results,
        ));
        match self.target {
            Target::Duckdb => self.out.push_str(&format!(
                "-- DuckDB writes into {} only where that folder is there already.\n",
                options.results
            )),
            Target::Spark => self.out.push_str(&format!(
                "-- The entity and each rule set are written as Parquet (the sets to {}/stages) and read back\n\
                 -- by the queries that follow, so Spark plans each query from there.\n",
                options.results
            )),
        }
        match (self.target, options.as_of) {
            (Target::Duckdb, Some(d)) => {
                self.out.push_str(&format!("SET VARIABLE as_of = DATE '{}';\n", d.format("%Y-%m-%d")))
            }
            (Target::Duckdb, None) => {
                self.out.push_str("-- Set the day first: SET VARIABLE as_of = DATE '2026-12-07';\n")
            }
            (Target::Spark, None) => self.out.push_str(
                "-- The day is Spark's variable `as_of`: spark-sql -d as_of=2026-12-07 -f <this file>, or\n\
                 -- spark.conf.set(\"as_of\", \"2026-12-07\") before spark.sql().\n",
            ),
            (Target::Spark, Some(_)) => {}
        }
    }

    /// A query in this target's dialect, or `None` with its errors in `diags`.
    fn query(&mut self, sql: &str, locate: impl Fn(usize, usize, String) -> Diagnostic) -> Option<String> {
        match self.target {
            Target::Duckdb => Some(sql.replace(AS_OF_VARIABLE, &self.as_of)),
            Target::Spark => match crate::warehouse::spark::to_spark(sql, &self.as_of) {
                Ok(sql) => Some(sql),
                Err(errors) => {
                    for e in errors {
                        self.diags.push(
                            locate(e.line, e.column, format!("does not translate to Spark SQL: {}", e.message))
                                .with_hint("docs/scale-out.md lists what translates"),
                        );
                    }
                    None
                }
            },
        }
    }

    /// A source read from Parquet with the job's columns and types.
    fn source(&mut self, source: &Source, folder: &str) {
        let columns: Vec<String> = source
            .columns
            .iter()
            .map(|c| {
                let ty = match self.target {
                    Target::Duckdb => c.sql_type.to_string(),
                    Target::Spark => spark_column_type(&c.sql_type.to_string()),
                };
                format!("CAST({} AS {ty}) AS {}", self.ident(&c.name), self.ident(&c.name))
            })
            .collect();
        let select = if columns.is_empty() { "*".to_string() } else { columns.join(", ") };
        let path = format!("{folder}/{}", source.name);
        let from = match self.target {
            Target::Duckdb => format!("read_parquet([{}])", crate::warehouse::sql_string(&format!("{path}.parquet"))),
            Target::Spark => format!("parquet.`{path}.parquet`"),
        };
        let sql = format!("SELECT {select} FROM {from}");
        self.view(&source.name, &sql);
    }

    fn ident(&self, name: &str) -> String {
        match self.target {
            Target::Duckdb => quote(name),
            Target::Spark => format!("`{}`", name.replace('`', "``")),
        }
    }

    /// `name` as a view of `sql`.
    fn view(&mut self, name: &str, sql: &str) {
        let name = self.ident(name);
        let text = match self.target {
            Target::Duckdb => format!("CREATE OR REPLACE TEMP VIEW {name} AS\n{sql};\n"),
            Target::Spark => format!("CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{sql};\n"),
        };
        self.out.push('\n');
        self.out.push_str(&text);
    }

    /// `name` as `sql` materialised, as it is read several times: a temporary table in
    /// DuckDB; in Spark, Parquet in `folder` read back as the view. Writing it out cuts the
    /// plan there: a cached view keeps its whole lineage, which Catalyst analyses and
    /// optimises again in every query that reads it (each rule set reads the entity and the
    /// sets it depends on), and that planning took most of the script's time.
    fn kept(&mut self, name: &str, sql: &str, folder: &str) {
        match self.target {
            Target::Duckdb => {
                let name = self.ident(name);
                self.out.push_str(&format!("\nCREATE OR REPLACE TEMP TABLE {name} AS\n{sql};\n"));
            }
            Target::Spark => {
                self.write_parquet(sql, folder);
                let view = format!("SELECT * FROM parquet.{}", self.ident(folder));
                self.view(name, &view);
            }
        }
    }

    fn write_parquet(&mut self, sql: &str, path: &str) {
        let text = match self.target {
            Target::Duckdb => format!(
                "COPY ({sql}) TO {} (FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE true);\n",
                crate::warehouse::sql_string(path)
            ),
            Target::Spark => {
                format!(
                    "INSERT OVERWRITE DIRECTORY '{}' USING parquet\n{sql};\n",
                    path.replace('\\', "\\\\").replace('\'', "\\'")
                )
            }
        };
        self.out.push('\n');
        self.out.push_str(&text);
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A source column's DuckDB type as Spark's.
fn spark_column_type(duckdb: &str) -> String {
    let upper = duckdb.trim().to_uppercase();
    match upper.as_str() {
        "VARCHAR" | "TEXT" | "STRING" => "STRING".into(),
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => "TIMESTAMP".into(),
        "HUGEINT" => "DECIMAL(38,0)".into(),
        "UBIGINT" => "DECIMAL(20,0)".into(),
        _ if upper.ends_with("[]") => format!("ARRAY<{}>", spark_column_type(&upper[..upper.len() - 2])),
        _ => upper,
    }
}
