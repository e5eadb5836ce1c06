//! Prometheus metrics: requests by route and status, latency and batch-size histograms per model
//! and version, and process metrics, rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const ROW_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0, 1024.0, 8192.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (c, b) in self.counts.iter_mut().zip(buckets) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (c, b) in self.counts.iter().zip(buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Counters of one model version.
#[derive(Debug, Default)]
struct ModelStats {
    rows: u64,
    errors: u64,
    panics: u64,
    batch_rows: Histogram,
    scoring_latency: Histogram,
    batch_requests: Histogram,
}

/// Maps keyed by strings are nested so that a request finds its counters without allocating.
#[derive(Debug, Default)]
struct Inner {
    /// route -> method -> status -> count.
    requests: BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>,
    request_latency: BTreeMap<String, Histogram>,
    /// model -> version -> stats.
    models: BTreeMap<String, BTreeMap<String, ModelStats>>,
    handler_panics: u64,
}

fn slot<'a, V: Default>(m: &'a mut BTreeMap<String, V>, k: &str) -> &'a mut V {
    if !m.contains_key(k) {
        m.insert(k.to_string(), V::default());
    }
    m.get_mut(k).expect("just inserted")
}

/// The server's counters; cheap to update from any handler.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    start: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner::default()),
            start: SystemTime::now(),
        }
    }
}

pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One HTTP request, by route template, method and status.
    pub fn request(&self, route: &str, method: &str, status: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let mut i = self.lock();
        *slot(slot(&mut i.requests, route), method)
            .entry(status)
            .or_default() += 1;
        slot(&mut i.request_latency, route).observe(&LATENCY_BUCKETS, seconds);
    }

    /// One scoring call of a model.
    pub fn scored(&self, model: &str, version: &str, rows: usize, seconds: f64, ok: bool) {
        let mut i = self.lock();
        let st = slot(slot(&mut i.models, model), version);
        if ok {
            st.rows += rows as u64;
        } else {
            st.errors += 1;
        }
        st.batch_rows.observe(&ROW_BUCKETS, rows as f64);
        st.scoring_latency.observe(&LATENCY_BUCKETS, seconds);
    }

    /// A model that panicked while scoring (it keeps serving).
    pub fn panicked(&self, model: &str, version: &str) {
        let mut i = self.lock();
        slot(slot(&mut i.models, model), version).panics += 1;
    }

    /// A handler that panicked outside scoring (answered 500).
    pub fn handler_panicked(&self) {
        self.lock().handler_panics += 1;
    }

    /// One call of a model's batcher, and how many requests it scored together.
    pub fn batch(&self, model: &str, version: Option<u32>, requests: usize) {
        let version = version.map_or_else(|| "file".to_string(), |v| v.to_string());
        let mut i = self.lock();
        slot(slot(&mut i.models, model), &version)
            .batch_requests
            .observe(&ROW_BUCKETS, requests as f64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let i = self.lock();
        let mut out = String::new();
        out.push_str("# HELP mlship_http_requests_total HTTP requests by route, method and status.\n# TYPE mlship_http_requests_total counter\n");
        for (route, methods) in &i.requests {
            for (method, statuses) in methods {
                for (status, n) in statuses {
                    let _ = writeln!(
                        out,
                        "mlship_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                        escape(route)
                    );
                }
            }
        }
        out.push_str("# HELP mlship_http_request_duration_seconds Time to answer, by route.\n# TYPE mlship_http_request_duration_seconds histogram\n");
        for (route, h) in &i.request_latency {
            h.render(
                &mut out,
                "mlship_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(route)),
                &LATENCY_BUCKETS,
            );
        }
        let each = |f: &mut dyn FnMut(String, &ModelStats)| {
            for (m, versions) in &i.models {
                for (v, st) in versions {
                    f(
                        format!("model=\"{}\",version=\"{}\"", escape(m), escape(v)),
                        st,
                    );
                }
            }
        };
        out.push_str("# HELP mlship_predictions_total Rows scored, by model and version.\n# TYPE mlship_predictions_total counter\n");
        each(&mut |l, st| {
            let _ = writeln!(out, "mlship_predictions_total{{{l}}} {}", st.rows);
        });
        out.push_str("# HELP mlship_prediction_errors_total Scoring calls that failed (refused input or the model's fault), by model and version.\n# TYPE mlship_prediction_errors_total counter\n");
        each(&mut |l, st| {
            let _ = writeln!(out, "mlship_prediction_errors_total{{{l}}} {}", st.errors);
        });
        out.push_str("# HELP mlship_model_panics_total Scoring calls in which the model panicked (answered 500; the model keeps serving), by model and version.\n# TYPE mlship_model_panics_total counter\n");
        each(&mut |l, st| {
            let _ = writeln!(out, "mlship_model_panics_total{{{l}}} {}", st.panics);
        });
        let _ = writeln!(
            out,
            "# HELP mlship_handler_panics_total Requests whose handler panicked outside scoring (answered 500).\n# TYPE mlship_handler_panics_total counter\nmlship_handler_panics_total {}",
            i.handler_panics
        );
        out.push_str("# HELP mlship_batch_rows Rows per scoring call, by model and version.\n# TYPE mlship_batch_rows histogram\n");
        each(&mut |l, st| {
            st.batch_rows
                .render(&mut out, "mlship_batch_rows", &l, &ROW_BUCKETS)
        });
        out.push_str("# HELP mlship_scoring_duration_seconds Time to score a call, by model and version.\n# TYPE mlship_scoring_duration_seconds histogram\n");
        each(&mut |l, st| {
            st.scoring_latency.render(
                &mut out,
                "mlship_scoring_duration_seconds",
                &l,
                &LATENCY_BUCKETS,
            )
        });
        out.push_str("# HELP mlship_batch_requests Single-row requests scored together by the batcher, by model and version.\n# TYPE mlship_batch_requests histogram\n");
        each(&mut |l, st| {
            if st.batch_requests.count > 0 {
                st.batch_requests
                    .render(&mut out, "mlship_batch_requests", &l, &ROW_BUCKETS);
            }
        });
        drop(i);
        process(&mut out, self.start);
        out
    }
}

/// Process metrics from /proc (Linux), as Prometheus client libraries name them.
fn process(out: &mut String, start: SystemTime) {
    let start_s = start
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = writeln!(
        out,
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start_s}"
    );
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        if let Some(rss) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
        {
            let _ = writeln!(
                out,
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
                rss * 4096
            );
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100/s).
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(u), Some(s)) = (
                f.get(11).and_then(|v| v.parse::<f64>().ok()),
                f.get(12).and_then(|v| v.parse::<f64>().ok()),
            ) {
                let _ = writeln!(
                    out,
                    "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                    (u + s) / 100.0
                );
            }
            if let Some(t) = f.get(17) {
                let _ = writeln!(out, "# TYPE process_threads gauge\nprocess_threads {t}");
            }
        }
    }
}
