//! A scrape: the shared table read once and written out in Prometheus's
//! text format by the `prometheus` crate's encoder.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::table::{
    self, Table, DURATION_AT, DURATION_BOUNDS, DURATION_SUM, METHODS, REQUEST_SIZE_AT,
    REQUEST_SIZE_SUM, RESPONSE_SIZE_AT, RESPONSE_SIZE_SUM, SIZE_BOUNDS, STRIDE,
};
use crate::routing::template_name;

/// The `path` of requests no route matched (404, 405, and requests a
/// layer answered before routing).
pub const UNMATCHED: &str = "<unmatched>";
/// The `path` of requests whose series found no room in the table.
pub const OVERFLOW: &str = "<overflow>";

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Row {
    method: &'static str,
    path: String,
    status: String,
    counters: [u64; STRIDE],
}

fn rows(table: &Table) -> Vec<Row> {
    let mut rows: Vec<Row> = table
        .snapshot()
        .into_iter()
        .map(|(key, counters)| {
            if key == 0 {
                return Row {
                    method: "other",
                    path: OVERFLOW.to_owned(),
                    status: "other".to_owned(),
                    counters,
                };
            }
            let (template, method, status) = table::parts(key);
            let path = match template {
                0 => UNMATCHED.to_owned(),
                id => template_name(id).map_or_else(|| UNMATCHED.to_owned(), |t| t.to_string()),
            };
            Row {
                method: METHODS[usize::from(method).min(METHODS.len() - 1)],
                path,
                status: status.to_string(),
                counters,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.path.as_str(), a.method, a.status.as_str()).cmp(&(
            b.path.as_str(),
            b.method,
            b.status.as_str(),
        ))
    });
    rows
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn labelled(row: &Row) -> Metric {
    Metric::from_label(vec![
        label("method", row.method),
        label("path", &row.path),
        label("status", &row.status),
    ])
}

fn family(name: String, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name);
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

/// A histogram from per-bucket counts (the last one +Inf) and a sum.
fn histogram(counts: &[u64], bounds: impl Iterator<Item = f64>, sum: f64) -> Histogram {
    let mut cumulative = 0;
    let buckets = bounds
        .zip(counts)
        .map(|(bound, &count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(counts.iter().sum());
    histogram.set_sample_sum(sum);
    histogram
}

fn gauge(value: f64) -> Metric {
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    Metric::from_gauge(gauge)
}

/// The whole exposition for metric names starting with `prefix`.
pub fn exposition(prefix: &str, table: &Table) -> String {
    let rows = rows(table);
    let durations = DURATION_AT..DURATION_SUM;
    let request_sizes = REQUEST_SIZE_AT..REQUEST_SIZE_SUM;
    let response_sizes = RESPONSE_SIZE_AT..RESPONSE_SIZE_SUM;
    let sizes = || SIZE_BOUNDS.iter().map(|&b| b as f64);
    let per_row = |make: &dyn Fn(&Row, &mut Metric)| -> Vec<Metric> {
        rows.iter()
            .map(|row| {
                let mut metric = labelled(row);
                make(row, &mut metric);
                metric
            })
            .collect()
    };
    let mut families = Vec::with_capacity(6);
    if !rows.is_empty() {
        families.push(family(
            format!("{prefix}requests_total"),
            "Requests served, by method, route template and status.",
            MetricType::COUNTER,
            per_row(&|row, metric| {
                let mut counter = Counter::default();
                counter.set_value(row.counters[durations.clone()].iter().sum::<u64>() as f64);
                metric.set_counter(counter);
            }),
        ));
        families.push(family(
            format!("{prefix}request_duration_seconds"),
            "Time from the request's arrival to the end of its response body, in seconds.",
            MetricType::HISTOGRAM,
            per_row(&|row, metric| {
                let sum = row.counters[DURATION_SUM] as f64 / 1e9;
                let bounds = DURATION_BOUNDS.iter().copied();
                metric.set_histogram(histogram(&row.counters[durations.clone()], bounds, sum));
            }),
        ));
        families.push(family(
            format!("{prefix}request_size_bytes"),
            "Request body sizes as their Content-Length declares them, in bytes.",
            MetricType::HISTOGRAM,
            per_row(&|row, metric| {
                let sum = row.counters[REQUEST_SIZE_SUM] as f64;
                let counts = &row.counters[request_sizes.clone()];
                metric.set_histogram(histogram(counts, sizes(), sum));
            }),
        ));
        families.push(family(
            format!("{prefix}response_size_bytes"),
            "Response body sizes as sent, in bytes.",
            MetricType::HISTOGRAM,
            per_row(&|row, metric| {
                let sum = row.counters[RESPONSE_SIZE_SUM] as f64;
                let counts = &row.counters[response_sizes.clone()];
                metric.set_histogram(histogram(counts, sizes(), sum));
            }),
        ));
    }
    let in_flight = table.in_flight() as f64;
    families.push(family(
        format!("{prefix}requests_in_flight"),
        "Requests being served now, by every worker process.",
        MetricType::GAUGE,
        vec![gauge(in_flight)],
    ));
    families.push(family(
        format!("{prefix}requests_in_progress"),
        "The same gauge as requests_in_flight, under its earlier name.",
        MetricType::GAUGE,
        vec![gauge(in_flight)],
    ));
    let mut out = Vec::with_capacity(256 + rows.len() * 2048);
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("the families are complete and writing to memory cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}
