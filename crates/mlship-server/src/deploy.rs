//! Deployments: one endpoint name routed to several model versions by weight, with sticky
//! devices, a shadow model, and automatic rollback of a failing candidate.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlship_registry::rollout::Counts;

use crate::Served;

/// When to take a candidate's traffic away.
#[derive(Clone, Debug, PartialEq)]
pub struct RollbackPolicy {
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// Judge a candidate only after this many of its requests.
    pub min_requests: u64,
    /// Tell the server's [`RollbackHook`] (which moves the alias in the registry). A rollout's
    /// split does not: its replicas send their counts to the registry, which decides for all.
    pub notify: bool,
}

/// Told when a deployment rolls back, to write it down (the binary moves the alias in the registry).
pub trait RollbackHook: Send + Sync {
    fn rolled_back(&self, deployment: &str, candidate: &Served, production: &Served, reason: &str);
}

#[derive(Debug, Default)]
struct RouteStats {
    /// Every request since the deployment was made (a rollout's replicas send these on).
    counts: Counts,
    /// The latest latencies (ms), for the p99.
    recent: VecDeque<f64>,
}

/// One endpoint name with weighted routes; route 0 is production, the others are candidates.
pub struct Deployment {
    pub name: String,
    pub routes: Vec<(Arc<Served>, u32)>,
    pub sticky_header: Option<String>,
    pub shadow: Option<Arc<Served>>,
    pub rollback: Option<RollbackPolicy>,
    stats: Mutex<Vec<RouteStats>>,
    rolled_back: AtomicBool,
    counter: AtomicU64,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("name", &self.name)
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|(s, w)| (s.source.clone(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

const WINDOW: usize = 1000;

impl Deployment {
    pub fn new(
        name: String,
        routes: Vec<(Arc<Served>, u32)>,
        sticky_header: Option<String>,
        shadow: Option<Arc<Served>>,
        rollback: Option<RollbackPolicy>,
    ) -> Deployment {
        let n = routes.len();
        Deployment {
            name,
            routes,
            sticky_header,
            shadow,
            rollback,
            stats: Mutex::new((0..n).map(|_| RouteStats::default()).collect()),
            rolled_back: AtomicBool::new(false),
            counter: AtomicU64::new(0),
        }
    }

    pub fn rolled_back(&self) -> bool {
        self.rolled_back.load(Ordering::Acquire)
    }

    /// The route for one request: by the sticky key's hash when there is one (the same device
    /// always meets the same version), else spread by weight. After a rollback, production only.
    pub fn pick(&self, sticky: Option<&str>) -> usize {
        if self.rolled_back() {
            return 0;
        }
        let total: u64 = self.routes.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return 0;
        }
        let x = match sticky {
            Some(k) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                self.name.hash(&mut h);
                k.hash(&mut h);
                h.finish()
            }
            // A Weyl sequence through the weights: exact proportions, no state shared between requests but a counter.
            None => {
                self.counter
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    >> 11
            }
        } % total;
        let mut acc = 0u64;
        for (i, (_, w)) in self.routes.iter().enumerate() {
            acc += u64::from(*w);
            if x < acc {
                return i;
            }
        }
        0
    }

    /// Each route's requests since the deployment was made, in route order.
    pub fn counts(&self) -> Vec<Counts> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|s| s.counts.clone())
            .collect()
    }

    /// Records one request's outcome on a route; may roll the candidate back (once).
    pub fn record(&self, route: usize, ok: bool, ms: f64, hook: Option<&dyn RollbackHook>) {
        let verdict = {
            let mut stats = self
                .stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(st) = stats.get_mut(route) else {
                return;
            };
            st.counts.record(ok, ms);
            st.recent.push_back(ms);
            if st.recent.len() > WINDOW {
                st.recent.pop_front();
            }
            match (&self.rollback, route) {
                (Some(p), r) if r > 0 && st.counts.requests >= p.min_requests => judge(p, st),
                _ => None,
            }
        };
        if let Some(reason) = verdict {
            let notify = self.rollback.as_ref().is_some_and(|p| p.notify);
            if !self.rolled_back.swap(true, Ordering::AcqRel) && notify {
                if let Some(h) = hook {
                    h.rolled_back(
                        &self.name,
                        &self.routes[route].0,
                        &self.routes[0].0,
                        &reason,
                    );
                }
            }
        }
    }
}

/// Each deployment's traffic split as Prometheus gauges: the share of requests each version
/// gets now (production takes it all after a rollback), and whether the candidate was rolled back.
pub fn render_metrics(deployments: &[Arc<Deployment>]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if deployments.is_empty() {
        return out;
    }
    out.push_str("# HELP mlship_deployment_weight Share of a deployment's requests each version gets now (0 to 1).\n# TYPE mlship_deployment_weight gauge\n");
    for d in deployments {
        let total: u64 = d.routes.iter().map(|(_, w)| u64::from(*w)).sum();
        for (i, (served, w)) in d.routes.iter().enumerate() {
            let share = if d.rolled_back() || total == 0 {
                if i == 0 { 1.0 } else { 0.0 }
            } else {
                f64::from(*w) / total as f64
            };
            let _ = writeln!(
                out,
                "mlship_deployment_weight{{deployment=\"{}\",version=\"{}\",role=\"{}\"}} {share}",
                crate::metrics::escape(&d.name),
                crate::metrics::escape(&served.version_label),
                if i == 0 { "production" } else { "candidate" }
            );
        }
    }
    out.push_str("# HELP mlship_deployment_rolled_back Whether the deployment's candidate was rolled back automatically (1) or not (0).\n# TYPE mlship_deployment_rolled_back gauge\n");
    for d in deployments {
        let _ = writeln!(
            out,
            "mlship_deployment_rolled_back{{deployment=\"{}\"}} {}",
            crate::metrics::escape(&d.name),
            u8::from(d.rolled_back())
        );
    }
    out
}

fn judge(p: &RollbackPolicy, st: &RouteStats) -> Option<String> {
    let (requests, errors) = (st.counts.requests, st.counts.errors);
    let rate = errors as f64 / requests as f64;
    if let Some(max) = p.max_error_rate {
        if rate > max {
            return Some(format!(
                "automatic rollback: error rate {rate:.3} > {max} over {requests} requests"
            ));
        }
    }
    if let Some(max) = p.max_p99_ms {
        let mut v: Vec<f64> = st.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let p99 = v[((v.len() as f64 * 0.99).ceil() as usize)
            .saturating_sub(1)
            .min(v.len() - 1)];
        if p99 > max {
            return Some(format!(
                "automatic rollback: p99 {p99:.1} ms > {max} ms over {requests} requests"
            ));
        }
    }
    None
}
