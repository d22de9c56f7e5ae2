//! Results: one [`Row`] per test, written as a human table (default), CSV or JSON, and the
//! live progress line shown on a terminal while a test runs.
//!
//! CSV and JSON are written by hand: a handful of fixed fields, with strings escaped. The
//! `retries` of the `cas` test are a JSON field of every row, and a last column of the table
//! and the CSV only when `cas` is among the tests (so other runs keep their columns). The
//! `publish` test's deliveries ([`Delivery`]) likewise add columns only when it runs, and
//! JSON fields only to its row.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use crate::runner::Outcome;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table, one line per test as it finishes.
    Human,
    /// A header line, then one line per test as it finishes.
    Csv,
    /// One JSON document once every test has run.
    Json,
}

/// The run's settings, echoed in the human header and the JSON document.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Server host as given.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connections.
    pub clients: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Value size in bytes.
    pub data_size: usize,
    /// Number of distinct keys.
    pub keyspace: u64,
    /// `uniform`, or `zipf` with its exponent.
    pub distribution: String,
    /// SET expiry in milliseconds.
    pub ttl_ms: Option<u64>,
    /// Worker threads.
    pub threads: usize,
    /// "N requests" or "Ns" per test.
    pub limit: String,
    /// Subscribers and channels of the `publish` test, when it runs.
    pub pubsub: Option<(usize, usize)>,
}

/// Optional columns of the table and the CSV.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    /// `retries` (the `cas` test).
    pub retries: bool,
    /// Deliveries and their latency (the `publish` test).
    pub deliveries: bool,
}

/// The subscribers' side of a `publish` run.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Channels they were spread over.
    pub channels: usize,
    /// Messages received.
    pub delivered: u64,
    /// Messages that should have been: per accepted PUBLISH, the subscribers of its channel.
    pub expected: u64,
    /// Messages received per second, from the start of the clock to the last one.
    pub per_second: f64,
    /// Median publish-to-delivery latency, ms.
    pub p50_ms: f64,
    /// 99th percentile publish-to-delivery latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile publish-to-delivery latency, ms.
    pub p999_ms: f64,
    /// Highest publish-to-delivery latency, ms.
    pub max_ms: f64,
    /// Subscriber-side errors (included in the row's errors): messages out of order, not
    /// published by kvbench, missing or extra, and subscribers cut off.
    pub errors: u64,
}

/// One test's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Test name (`set`, `mixed 1:10`, ...).
    pub test: String,
    /// Requests completed (a transaction or a check-and-set counts once).
    pub requests: u64,
    /// Wall time of the test.
    pub seconds: f64,
    /// `requests / seconds`.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms.
    pub p999_ms: f64,
    /// Highest latency, ms.
    pub max_ms: f64,
    /// Error replies.
    pub errors: u64,
    /// Text of the first error reply.
    pub first_error: Option<String>,
    /// Attempts made again because EXEC aborted (`cas`).
    pub retries: u64,
    /// The deliveries (`publish`).
    pub delivery: Option<Delivery>,
}

impl Row {
    /// Summarises `outcome` under the name `test`.
    pub fn new(test: String, outcome: &Outcome) -> Self {
        let latency = &outcome.stats.latency;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let percentile = |q: f64| {
            if latency.is_empty() {
                0.0
            } else {
                ms(latency.value_at_quantile(q))
            }
        };
        let seconds = outcome.elapsed.as_secs_f64();
        let requests = outcome.stats.requests;
        Self {
            test,
            requests,
            seconds,
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: percentile(0.5),
            p99_ms: percentile(0.99),
            p999_ms: percentile(0.999),
            max_ms: if latency.is_empty() {
                0.0
            } else {
                ms(latency.max())
            },
            errors: outcome.stats.errors,
            first_error: outcome.stats.first_error.clone(),
            retries: outcome.stats.retries,
            delivery: None,
        }
    }

    /// Adds the subscribers' side of a `publish` run: its errors count among the row's.
    pub fn with_delivery(mut self, delivery: Delivery, first_error: Option<&str>) -> Self {
        self.errors += delivery.errors;
        if self.first_error.is_none() {
            self.first_error = first_error.map(str::to_owned);
        }
        self.delivery = Some(delivery);
        self
    }
}

/// Writes rows to stdout in the chosen format.
#[derive(Debug)]
pub struct Report {
    format: Format,
    settings: Settings,
    /// The optional columns of the table and the CSV.
    columns: Columns,
    /// Rows kept for the JSON document.
    rows: Vec<Row>,
}

impl Report {
    /// A report in `format` with the optional `columns`; writes the header (human, CSV) at
    /// once.
    ///
    /// # Errors
    ///
    /// Writing to stdout failed.
    pub fn begin(format: Format, settings: Settings, columns: Columns) -> io::Result<Self> {
        let mut out = io::stdout().lock();
        let mut extra = String::new();
        if columns.retries {
            extra.push_str(" retries");
        }
        if columns.deliveries {
            let _ = write!(
                extra,
                " {:>10} {:>12} {:>10} {:>10} {:>12}",
                "deliveries", "deliveries/s", "dlv p50 ms", "dlv p99 ms", "dlv p99.9 ms"
            );
        }
        match format {
            Format::Human => {
                writeln!(out, "{}", describe(&settings))?;
                writeln!(
                    out,
                    "{:<12} {:>10} {:>8} {:>11} {:>8} {:>8} {:>8} {:>8} {:>7}{extra}",
                    "test",
                    "requests",
                    "seconds",
                    "requests/s",
                    "p50 ms",
                    "p99 ms",
                    "p99.9 ms",
                    "max ms",
                    "errors"
                )?;
            }
            Format::Csv => writeln!(
                out,
                "test,requests,seconds,rps,p50_ms,p99_ms,p99_9_ms,max_ms,errors{}{}",
                if columns.retries { ",retries" } else { "" },
                if columns.deliveries {
                    ",deliveries,deliveries_per_s,delivery_p50_ms,delivery_p99_ms,\
                     delivery_p99_9_ms,delivery_max_ms"
                } else {
                    ""
                }
            )?,
            Format::Json => {}
        }
        out.flush()?;
        Ok(Self {
            format,
            settings,
            columns,
            rows: Vec::new(),
        })
    }

    /// Adds one test's row (written at once, except for JSON).
    ///
    /// # Errors
    ///
    /// Writing to stdout failed.
    pub fn row(&mut self, row: Row) -> io::Result<()> {
        let mut out = io::stdout().lock();
        let mut extra = String::new();
        let mut csv_extra = String::new();
        if self.columns.retries {
            let _ = write!(extra, " {:>7}", row.retries);
            let _ = write!(csv_extra, ",{}", row.retries);
        }
        if self.columns.deliveries {
            match &row.delivery {
                Some(d) => {
                    let _ = write!(
                        extra,
                        " {:>10} {:>12.0} {:>10.3} {:>10.3} {:>12.3}",
                        d.delivered, d.per_second, d.p50_ms, d.p99_ms, d.p999_ms
                    );
                    let _ = write!(
                        csv_extra,
                        ",{},{:.2},{:.3},{:.3},{:.3},{:.3}",
                        d.delivered, d.per_second, d.p50_ms, d.p99_ms, d.p999_ms, d.max_ms
                    );
                }
                None => {
                    let _ = write!(
                        extra,
                        " {:>10} {:>12} {:>10} {:>10} {:>12}",
                        "-", "-", "-", "-", "-"
                    );
                    csv_extra.push_str(",,,,,,");
                }
            }
        }
        match self.format {
            Format::Human => writeln!(
                out,
                "{:<12} {:>10} {:>8.3} {:>11.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}{extra}",
                row.test,
                row.requests,
                row.seconds,
                row.rps,
                row.p50_ms,
                row.p99_ms,
                row.p999_ms,
                row.max_ms,
                row.errors
            )?,
            Format::Csv => writeln!(out, "{}{csv_extra}", csv_line(&row))?,
            Format::Json => self.rows.push(row),
        }
        out.flush()
    }

    /// Finishes the report (writes the JSON document).
    ///
    /// # Errors
    ///
    /// Writing to stdout failed.
    pub fn finish(self) -> io::Result<()> {
        if self.format == Format::Json {
            let mut out = io::stdout().lock();
            writeln!(out, "{}", json_document(&self.settings, &self.rows))?;
            out.flush()?;
        }
        Ok(())
    }
}

/// The human header line.
fn describe(s: &Settings) -> String {
    let mut line = format!(
        "kvbench {}:{}: {} clients, pipeline {}, {}-byte values, {} key{} ({}), {} per test",
        s.host,
        s.port,
        s.clients,
        s.pipeline,
        s.data_size,
        s.keyspace,
        if s.keyspace == 1 { "" } else { "s" },
        s.distribution,
        s.limit
    );
    if let Some(ttl) = s.ttl_ms {
        let _ = write!(line, ", SET with PX {ttl}");
    }
    if s.threads > 1 {
        let _ = write!(line, ", {} threads", s.threads);
    }
    if let Some((subscribers, channels)) = s.pubsub {
        let _ = write!(
            line,
            ", publish: {subscribers} subscriber{} on {channels} channel{}",
            if subscribers == 1 { "" } else { "s" },
            if channels == 1 { "" } else { "s" }
        );
    }
    line
}

fn csv_line(row: &Row) -> String {
    format!(
        "{},{},{:.3},{:.2},{:.3},{:.3},{:.3},{:.3},{}",
        csv_field(&row.test),
        row.requests,
        row.seconds,
        row.rps,
        row.p50_ms,
        row.p99_ms,
        row.p999_ms,
        row.max_ms,
        row.errors
    )
}

/// Quotes a CSV field if it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn json_document(s: &Settings, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"host\":{},\"port\":{},\"clients\":{},\"pipeline\":{},\"data_size\":{},\
         \"keyspace\":{},\"distribution\":{},\"ttl_ms\":{},\"threads\":{},\"results\":[",
        json_string(&s.host),
        s.port,
        s.clients,
        s.pipeline,
        s.data_size,
        s.keyspace,
        json_string(&s.distribution),
        s.ttl_ms
            .map_or_else(|| "null".to_owned(), |ms| ms.to_string()),
        s.threads,
    );
    if let Some((subscribers, channels)) = s.pubsub {
        // Inserted before `"results"`.
        out.truncate(out.len() - "\"results\":[".len());
        let _ = write!(
            out,
            "\"subscribers\":{subscribers},\"channels\":{channels},\"results\":["
        );
    }
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"test\":{},\"requests\":{},\"seconds\":{:.6},\"rps\":{:.2},\"p50_ms\":{:.3},\
             \"p99_ms\":{:.3},\"p99_9_ms\":{:.3},\"max_ms\":{:.3},\"errors\":{},\"first_error\":{},\
             \"retries\":{}}}",
            json_string(&row.test),
            row.requests,
            row.seconds,
            row.rps,
            row.p50_ms,
            row.p99_ms,
            row.p999_ms,
            row.max_ms,
            row.errors,
            row.first_error
                .as_deref()
                .map_or_else(|| "null".to_owned(), json_string),
            row.retries,
        );
        if let Some(d) = &row.delivery {
            // Inside the row's object: before its closing brace.
            out.pop();
            let _ = write!(
                out,
                ",\"deliveries\":{},\"expected_deliveries\":{},\"deliveries_per_s\":{:.2},\
                 \"delivery_p50_ms\":{:.3},\"delivery_p99_ms\":{:.3},\"delivery_p99_9_ms\":{:.3},\
                 \"delivery_max_ms\":{:.3},\"delivery_errors\":{}}}",
                d.delivered,
                d.expected,
                d.per_second,
                d.p50_ms,
                d.p99_ms,
                d.p999_ms,
                d.max_ms,
                d.errors
            );
        }
    }
    out.push_str("]}");
    out
}

/// A JSON string literal (RFC 8259 escaping).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The live progress line, drawn on stderr only when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    test: String,
    last_done: u64,
    last_at: Duration,
}

impl Progress {
    /// A progress line for `test`.
    pub fn new(test: String) -> Self {
        Self {
            enabled: io::stderr().is_terminal(),
            test,
            last_done: 0,
            last_at: Duration::ZERO,
        }
    }

    /// Redraws the line: requests so far, the recent and overall rates.
    pub fn update(&mut self, done: u64, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let window = elapsed.saturating_sub(self.last_at).as_secs_f64();
        let recent = if window > 0.0 {
            done.saturating_sub(self.last_done) as f64 / window
        } else {
            0.0
        };
        let total = elapsed.as_secs_f64();
        let overall = if total > 0.0 {
            done as f64 / total
        } else {
            0.0
        };
        self.last_done = done;
        self.last_at = elapsed;
        let mut err = io::stderr().lock();
        // Progress is best effort: a failed write to the terminal is not worth stopping for.
        let _ = write!(
            err,
            "\r\x1b[K{}: {done} requests, rps={recent:.0} (overall {overall:.0}), {total:.1}s",
            self.test
        );
        let _ = err.flush();
    }

    /// Erases the line.
    pub fn clear(&self) {
        if self.enabled && self.last_at > Duration::ZERO {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            test: "mixed 1:10".to_owned(),
            requests: 1000,
            seconds: 0.5,
            rps: 2000.0,
            p50_ms: 0.1234,
            p99_ms: 1.0,
            p999_ms: 2.0,
            max_ms: 3.0,
            errors: 2,
            first_error: Some("ERR \"bad\"\n".to_owned()),
            retries: 7,
            delivery: None,
        }
    }

    #[test]
    fn json_escapes_strings() {
        assert_eq!(json_string("a\"b\\c\u{1}é"), "\"a\\\"b\\\\c\\u0001é\"");
    }

    #[test]
    fn json_document_shape() {
        let settings = Settings {
            host: "localhost".to_owned(),
            port: 6379,
            clients: 50,
            pipeline: 16,
            data_size: 3,
            keyspace: 100,
            distribution: "zipf 0.99".to_owned(),
            ttl_ms: None,
            threads: 1,
            limit: "1000 requests".to_owned(),
            pubsub: None,
        };
        let doc = json_document(&settings, &[row(), row()]);
        assert!(doc.starts_with("{\"host\":\"localhost\",\"port\":6379,"));
        assert!(doc.contains("\"ttl_ms\":null"));
        assert!(doc.contains(
            "{\"test\":\"mixed 1:10\",\"requests\":1000,\"seconds\":0.500000,\"rps\":2000.00,\
             \"p50_ms\":0.123,\"p99_ms\":1.000,\"p99_9_ms\":2.000,\"max_ms\":3.000,\"errors\":2,\
             \"first_error\":\"ERR \\\"bad\\\"\\n\",\"retries\":7},{"
        ));
        assert!(doc.ends_with("}]}"));
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(
            csv_line(&row()),
            "mixed 1:10,1000,0.500,2000.00,0.123,1.000,2.000,3.000,2"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
