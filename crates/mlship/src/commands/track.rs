//! `mlship run --track`: each stage that ran (or came from the run cache) becomes an MLflow run on
//! a tracking server (`mlship server` or MLflow's own): the params it read, the numbers of its
//! metrics files, its command and the git commit as tags, and its deps as datasets whose digest is
//! the DVC md5, through the same REST calls the `mlflow` client makes.

use anyhow::Context;
use serde_json::{Value as Json, json};

use crate::user;

/// A tracking server and the experiment the pipeline's runs go to.
pub struct Tracker {
    base: String,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    experiment_id: String,
}

impl Tracker {
    /// Finds or creates the experiment `name` on the server at `url`.
    pub fn open(url: &str, name: &str) -> anyhow::Result<Tracker> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let mut t = Tracker {
            base: url.trim_end_matches('/').to_string(),
            client,
            rt,
            experiment_id: String::new(),
        };
        let created = t.call("experiments/create", &json!({"name": name}));
        t.experiment_id = match created {
            Ok(v) => v["experiment_id"].as_str().unwrap_or_default().to_string(),
            Err(_) => {
                let url = format!(
                    "{}/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
                    t.base,
                    name.replace(' ', "%20")
                );
                let v: Json = t.rt.block_on(async {
                    let r = t.client.get(&url).send().await?;
                    r.error_for_status()?.json().await
                })?;
                v["experiment"]["experiment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
        };
        if t.experiment_id.is_empty() {
            return Err(user(
                format!("the tracking server at {url} gave no experiment id"),
                "check that the URL is an MLflow tracking server (`mlship server`)",
            ));
        }
        Ok(t)
    }

    fn call(&self, route: &str, body: &Json) -> anyhow::Result<Json> {
        let url = format!("{}/api/2.0/mlflow/{route}", self.base);
        self.rt.block_on(async {
            let r = self
                .client
                .post(&url)
                .json(body)
                .send()
                .await
                .with_context(|| format!("reaching the tracking server at {}", self.base))?;
            let status = r.status();
            let v: Json = r.json().await.unwrap_or(Json::Null);
            if !status.is_success() {
                anyhow::bail!("{route}: {status}: {}", v["message"].as_str().unwrap_or(""));
            }
            Ok(v)
        })
    }

    /// Logs one stage as a finished run; returns its id.
    pub fn stage(
        &self,
        stage: &str,
        restored: bool,
        rec: &mlship_data::pipeline::StageRecord,
        commit: Option<&str>,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut tags = vec![
            json!({"key": "mlflow.runName", "value": stage}),
            json!({"key": "mlflow.source.type", "value": "PIPELINE"}),
            json!({"key": "mlship.stage.cmd", "value": rec.cmd}),
            json!({"key": "mlship.stage.restored", "value": restored.to_string()}),
        ];
        if let Some(c) = commit {
            tags.push(json!({"key": "mlflow.source.git.commit", "value": c}));
        }
        let run = self.call(
            "runs/create",
            &json!({"experiment_id": self.experiment_id, "run_name": stage, "start_time": now, "tags": tags}),
        )?;
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let params: Vec<Json> = rec
            .params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let metrics: Vec<Json> = rec
            .metrics
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v, "timestamp": now, "step": 0}))
            .collect();
        self.call(
            "runs/log-batch",
            &json!({"run_id": id, "params": params, "metrics": metrics}),
        )?;
        let datasets: Vec<Json> = rec
            .deps
            .iter()
            .map(|(path, md5)| {
                json!({
                    "dataset": {
                        "name": path,
                        "digest": md5,
                        "source_type": "dvc",
                        "source": json!({"path": path, "md5": md5}).to_string(),
                    },
                    "tags": [{"key": "mlflow.data.context", "value": "input"}],
                })
            })
            .collect();
        if !datasets.is_empty() {
            self.call(
                "runs/log-inputs",
                &json!({"run_id": id, "datasets": datasets}),
            )?;
        }
        self.call(
            "runs/update",
            &json!({"run_id": id, "status": "FINISHED", "end_time": chrono::Utc::now().timestamp_millis()}),
        )?;
        Ok(id)
    }
}
