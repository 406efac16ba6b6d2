//! Running scenarios with a watchdog, and the report: scenario × runtime, and
//! client × server, printed and written as Markdown.

use crate::{Runtime, Scenario};
use std::fmt::Write as _;
use std::time::Duration;

/// How long one scenario may take before it counts as failed (hung). Scenarios
/// never measure time; this only bounds a broken run.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

/// The result of one scenario run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, with why.
    Fail(String),
}

/// Runs `s` with a client on `client` and a server on `server`, catching panics
/// and bounding it in time. A scenario that hangs cannot be joined: the process
/// exits (status 2) after saying so; [`run_into`] writes the report first.
pub fn run_one(s: &Scenario, client: &dyn Runtime, server: &dyn Runtime) -> Outcome {
    run_bounded(s, client, server, &mut |_| {})
}

/// [`run_one`], adding its row to `report`. If the scenario hangs, the report
/// so far (with the hung row, and a note that the run stopped there) is printed
/// and written, as [`Report::finish`] does, before the process exits.
pub fn run_into(report: &mut Report, s: &Scenario, client: &dyn Runtime, server: &dyn Runtime) {
    let o = run_bounded(s, client, server, &mut |hung| {
        report.abort(s.id, client.name(), server.name(), hung);
    });
    report.push(s.id, client.name(), server.name(), o);
}

fn run_bounded(
    s: &Scenario,
    client: &dyn Runtime,
    server: &dyn Runtime,
    on_hang: &mut dyn FnMut(Outcome),
) -> Outcome {
    let run = s.run;
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::scope(|scope| {
        let h = scope.spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(client, server)));
            let _ = tx.send(());
            r
        });
        match rx.recv_timeout(SCENARIO_LIMIT) {
            Ok(()) => match h.join() {
                Ok(Ok(Ok(()))) => Outcome::Pass,
                Ok(Ok(Err(e))) => Outcome::Fail(e),
                Ok(Err(p)) | Err(p) => Outcome::Fail(panic_text(&p)),
            },
            // A hung scenario cannot be joined; the process exits after the report.
            Err(_) => {
                eprintln!("scenario {} hung; aborting the run", s.id);
                on_hang(Outcome::Fail(format!(
                    "hung: not finished within {SCENARIO_LIMIT:?}"
                )));
                std::process::exit(2);
            }
        }
    });
    r
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

/// Rows of (scenario, client runtime, server runtime, outcome).
#[derive(Debug, Default)]
pub struct Report {
    title: String,
    rows: Vec<(String, String, String, Outcome)>,
    /// The file name (without `.md`) a run that stops early writes to.
    file: String,
    /// Why the run stopped before its end.
    aborted: Option<String>,
}

impl Report {
    /// An empty report.
    pub fn new(title: String) -> Self {
        Report {
            title,
            rows: Vec::new(),
            file: "report".to_string(),
            aborted: None,
        }
    }

    /// The file (under `target/weft-conformance/`, without `.md`) that the report
    /// is written to if the run stops early; [`finish`](Self::finish) names its own.
    pub fn with_file(mut self, file: &str) -> Self {
        self.file = file.to_string();
        self
    }

    /// The run stops at a hung scenario: adds its row, notes that later ones did
    /// not run, and prints and writes the report (to its [`with_file`](Self::with_file)
    /// name). Returns where it was written.
    pub fn abort(
        &mut self,
        scenario: &str,
        client: &str,
        server: &str,
        o: Outcome,
    ) -> Option<std::path::PathBuf> {
        self.push(scenario, client, server, o);
        self.aborted = Some(format!(
            "The run stopped at `{scenario}` ({client} -> {server}), which hung; \
             the scenarios after it did not run."
        ));
        let file = self.file.clone();
        self.write(&file)
    }

    /// Every row: (scenario, client runtime, server runtime, outcome), in order.
    pub fn rows(&self) -> impl Iterator<Item = (&str, &str, &str, &Outcome)> {
        self.rows
            .iter()
            .map(|(s, c, v, o)| (s.as_str(), c.as_str(), v.as_str(), o))
    }

    /// Adds a row.
    pub fn push(&mut self, scenario: &str, client: &str, server: &str, o: Outcome) {
        self.rows.push((
            scenario.to_string(),
            client.to_string(),
            server.to_string(),
            o,
        ));
    }

    /// Rows that failed.
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|(s, c, v, o)| match o {
                Outcome::Fail(e) => Some(format!("{s} ({c} -> {v}): {e}")),
                Outcome::Pass => None,
            })
            .collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The report as Markdown: a table per client/server pair with one row per
    /// scenario, and a pass count.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        if let Some(a) = &self.aborted {
            let _ = writeln!(out, "**Incomplete.** {a}\n");
        }
        let pass = self.rows.iter().filter(|r| r.3 == Outcome::Pass).count();
        let _ = writeln!(out, "{pass} passed, {} failed\n", self.rows.len() - pass);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for r in &self.rows {
            let p = (r.1.clone(), r.2.clone());
            if !pairs.contains(&p) {
                pairs.push(p);
            }
        }
        let mut scenarios: Vec<String> = Vec::new();
        for r in &self.rows {
            if !scenarios.contains(&r.0) {
                scenarios.push(r.0.clone());
            }
        }
        out.push_str("| scenario |");
        for (c, s) in &pairs {
            let _ = write!(out, " {c} → {s} |");
        }
        out.push_str("\n|---|");
        for _ in &pairs {
            out.push_str("---|");
        }
        out.push('\n');
        for sc in &scenarios {
            let _ = write!(out, "| `{sc}` |");
            for (c, s) in &pairs {
                let cell = self
                    .rows
                    .iter()
                    .find(|r| &r.0 == sc && &r.1 == c && &r.2 == s)
                    .map_or("", |r| {
                        if r.3 == Outcome::Pass {
                            "pass"
                        } else {
                            "**FAIL**"
                        }
                    });
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        let fails = self.failures();
        if !fails.is_empty() {
            out.push_str("\n## Failures\n\n");
            for f in fails {
                let _ = writeln!(out, "- {f}");
            }
        }
        out
    }

    /// Prints the report, writes it to `target/weft-conformance/<file>.md`, and
    /// panics listing the failures if any row failed.
    pub fn finish(&self, file: &str) {
        self.write(file);
        let fails = self.failures();
        assert!(
            fails.is_empty(),
            "{} scenario(s) failed:\n{}",
            fails.len(),
            fails.join("\n")
        );
        // The plain closing line CI reads.
        println!("{} passed, 0 failed", self.rows.len());
    }

    /// Prints the report and writes it to `target/weft-conformance/<file>.md`;
    /// returns the path if it was written.
    fn write(&self, file: &str) -> Option<std::path::PathBuf> {
        let md = self.markdown();
        println!("{md}");
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("weft-conformance");
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{file}.md"));
        match std::fs::write(&path, &md) {
            Ok(()) => {
                println!("report written to {}", path.display());
                Some(path)
            }
            Err(e) => {
                eprintln!("report not written to {}: {e}", path.display());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aborted_run_writes_its_report_with_the_hung_row() {
        let file = format!("abort-test-{}", std::process::id());
        let mut r = Report::new("abort test".into()).with_file(&file);
        r.push("a/first", "c", "s", Outcome::Pass);
        let path = r
            .abort("a/second", "c", "s", Outcome::Fail("hung".into()))
            .expect("report written");
        let md = std::fs::read_to_string(&path).expect("report readable");
        let _ = std::fs::remove_file(&path);
        assert!(md.contains("**Incomplete.**"), "{md}");
        assert!(md.contains("`a/second` (c -> s), which hung"), "{md}");
        assert!(md.contains("| `a/first` | pass |"), "{md}");
        assert!(md.contains("| `a/second` | **FAIL** |"), "{md}");
        assert!(md.contains("1 passed, 1 failed"), "{md}");
    }
}
