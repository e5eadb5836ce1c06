//! Dynamic batching: single-row requests to one model that arrive together are scored together.
//!
//! A model's batcher takes the first waiting request, then everything else already queued (up to
//! `max_batch_size` rows), waiting at most `max_latency` for more, and scores them in one call.
//! With `max_latency` zero (the default), nothing waits: batches form only under load.

use std::sync::Arc;
use std::time::Duration;

use mlship_model::{ColumnData, Frame, Matrix, Model, Output, Predictions, Scores};
use tokio::sync::{mpsc, oneshot};

use crate::api::{Failure, predict_guarded};

/// One request waiting in a batch.
pub struct Job {
    frame: Frame,
    reply: oneshot::Sender<Result<Output, Failure>>,
}

/// How batches form.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    pub max_batch_size: usize,
    pub max_latency: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch_size: 64,
            max_latency: Duration::ZERO,
        }
    }
}

/// Starts a batcher for `model`; the sender feeds it.
pub fn spawn(
    model: Arc<Model>,
    cfg: BatchConfig,
    on_batch: Arc<dyn Fn(usize) + Send + Sync>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            let deadline = tokio::time::Instant::now() + cfg.max_latency;
            while jobs.len() < cfg.max_batch_size {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) if cfg.max_latency.is_zero() => break,
                    Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(j)) => jobs.push(j),
                        _ => break,
                    },
                }
            }
            on_batch(jobs.len());
            run(&model, jobs);
        }
    });
    tx
}

/// Submits one frame and waits for its answer.
pub async fn submit(tx: &mpsc::UnboundedSender<Job>, frame: Frame) -> Result<Output, Failure> {
    let (reply, rx) = oneshot::channel();
    tx.send(Job { frame, reply })
        .map_err(|_| Failure::Stopped)?;
    rx.await.map_err(|_| Failure::Stopped)?
}

fn same_layout(a: &Frame, b: &Frame) -> bool {
    a.columns().len() == b.columns().len()
        && a.columns().iter().zip(b.columns()).all(|(x, y)| {
            x.name == y.name && std::mem::discriminant(&x.data) == std::mem::discriminant(&y.data)
        })
}

/// Scores the jobs: those shaped like the first in one call, the others alone.
fn run(model: &Model, jobs: Vec<Job>) {
    let (together, alone): (Vec<Job>, Vec<Job>) = {
        let first = jobs[0].frame.clone();
        jobs.into_iter()
            .partition(|j| same_layout(&first, &j.frame))
    };
    for j in alone {
        let _ = j.reply.send(predict_guarded(model, &j.frame));
    }
    if together.len() == 1 {
        let j = together.into_iter().next().expect("one job");
        let _ = j.reply.send(predict_guarded(model, &j.frame));
        return;
    }
    let frames: Vec<&Frame> = together.iter().map(|j| &j.frame).collect();
    match concat(&frames).map(|f| predict_guarded(model, &f)) {
        Ok(Ok(out)) => {
            let mut start = 0;
            for j in together {
                let n = j.frame.n_rows();
                let _ = j.reply.send(Ok(slice(&out, start, n)));
                start += n;
            }
        }
        // One bad request spoils a shared call: score each alone so only it gets the error.
        _ => {
            for j in together {
                let _ = j.reply.send(predict_guarded(model, &j.frame));
            }
        }
    }
}

fn concat(frames: &[&Frame]) -> Result<Frame, mlship_model::Error> {
    let first = frames[0];
    let cols = first
        .columns()
        .iter()
        .enumerate()
        .map(|(c, col)| {
            let mut data = match &col.data {
                ColumnData::Float(_) => ColumnData::Float(Vec::new()),
                ColumnData::Int(_) => ColumnData::Int(Vec::new()),
                ColumnData::Str(_) => ColumnData::Str(Vec::new()),
                ColumnData::Bool(_) => ColumnData::Bool(Vec::new()),
            };
            for f in frames {
                match (&mut data, &f.columns()[c].data) {
                    (ColumnData::Float(a), ColumnData::Float(b)) => a.extend_from_slice(b),
                    (ColumnData::Int(a), ColumnData::Int(b)) => a.extend_from_slice(b),
                    (ColumnData::Str(a), ColumnData::Str(b)) => a.extend_from_slice(b),
                    (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend_from_slice(b),
                    _ => {}
                }
            }
            mlship_model::Column::new(col.name.clone(), data)
        })
        .collect();
    Frame::new(cols)
}

fn rows(m: &Matrix, start: usize, n: usize) -> Matrix {
    let data = (start..start + n).flat_map(|i| m.row(i).to_vec()).collect();
    Matrix::new(n, m.cols(), data).expect("rows of a matrix")
}

/// Rows `start..start + n` of a batch's output.
fn slice(o: &Output, start: usize, n: usize) -> Output {
    let r = start..start + n;
    Output {
        predictions: match &o.predictions {
            Predictions::Labels(v) => Predictions::Labels(v[r.clone()].to_vec()),
            Predictions::Classes(v) => Predictions::Classes(v[r.clone()].to_vec()),
            Predictions::Values(v) => Predictions::Values(v[r.clone()].to_vec()),
            Predictions::Clusters(v) => Predictions::Clusters(v[r.clone()].to_vec()),
        },
        probabilities: o.probabilities.as_ref().map(|m| rows(m, start, n)),
        classes: o.classes.clone(),
        decision_function: o.decision_function.as_ref().map(|d| match d {
            Scores::Vector(v) => Scores::Vector(v[r.clone()].to_vec()),
            Scores::Matrix(m) => Scores::Matrix(rows(m, start, n)),
        }),
        distances: o.distances.as_ref().map(|m| rows(m, start, n)),
        extra: o
            .extra
            .iter()
            .map(|(name, v)| (name.clone(), v[r.clone()].to_vec()))
            .collect(),
    }
}
