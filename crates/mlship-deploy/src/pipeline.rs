//! A pipeline handed to the engines teams already run, one task per stage with the DAG's edges:
//! an Airflow DAG of BashOperators, an Argo CronWorkflow, and a Kubernetes CronJob that runs the
//! whole pipeline in one pod. Every task calls `mlship run STAGE`, which skips what did not change.

use serde_json::{Value as Json, json};

use crate::{Error, File, Result};

/// What the exports need to know.
#[derive(Clone, Debug)]
pub struct PipelinePlan {
    /// The pipeline's name: a DNS label (the DAG id takes it with `-` as `_`).
    pub name: String,
    /// Stages in run order, each with the stages it needs.
    pub stages: Vec<(String, Vec<String>)>,
    /// A five-field cron expression; Airflow may go without (manual runs only).
    pub cron: Option<String>,
    /// The schedule's time zone (IANA name).
    pub timezone: String,
    /// The image holding mlship and the project (Argo, Kubernetes).
    pub image: Option<String>,
    pub namespace: Option<String>,
    /// Where the project is: the folder on Airflow's workers, the working folder in the image.
    pub workdir: String,
    /// Pull the data before each task and push outputs after (a remote is configured).
    pub sync_data: bool,
    /// A Secret with the remote's credentials (AWS_* variables), for Argo and Kubernetes.
    pub secret: Option<String>,
}

fn check(plan: &PipelinePlan) -> Result<()> {
    crate::check_name(&plan.name)?;
    if plan.stages.is_empty() {
        return Err(Error::Invalid {
            field: "stages",
            why: "dvc.yaml has no stages".into(),
        });
    }
    if let Some(c) = &plan.cron {
        if c.split_whitespace().count() != 5 {
            return Err(Error::Invalid {
                field: "cron",
                why: format!("{c:?} must have five fields (minute hour day month weekday)"),
            });
        }
    }
    Ok(())
}

fn run_args(plan: &PipelinePlan, stage: Option<&str>) -> Vec<String> {
    let mut a = vec!["run".to_string()];
    a.extend(stage.map(str::to_string));
    if plan.sync_data {
        a.push("--pull".into());
        a.push("--push".into());
    }
    a
}

/// A DNS label for a stage's task.
fn task_name(stage: &str) -> String {
    let s: String = stage
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').chars().take(50).collect()
}

fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `dags/NAME.py`: one BashOperator per stage; Airflow 3's imports, Airflow 2's where they fail.
pub fn airflow(plan: &PipelinePlan) -> Result<Vec<File>> {
    check(plan)?;
    let dag_id = plan.name.replace('-', "_");
    let mut s = String::new();
    s.push_str(&format!(
        "\"\"\"The {} pipeline (dvc.yaml), written by `mlship pipeline export --target airflow`.\n\nEach task runs `mlship run STAGE` in the project folder; a stage whose command, deps and\nparams did not change is skipped there. Set MLSHIP_PROJECT and MLSHIP_BIN on the workers to move\nthem.\n\"\"\"\n",
        plan.name
    ));
    s.push_str("import os\nimport shlex\n\nimport pendulum\n\ntry:\n    from airflow.sdk import DAG\n    from airflow.providers.standard.operators.bash import BashOperator\nexcept ImportError:  # Airflow 2\n    from airflow import DAG\n    from airflow.operators.bash import BashOperator\n\n");
    s.push_str(&format!(
        "PROJECT = os.environ.get(\"MLSHIP_PROJECT\", {})\nMLSHIP = os.environ.get(\"MLSHIP_BIN\", \"mlship\")\n\n",
        py_str(&plan.workdir)
    ));
    let schedule = match &plan.cron {
        Some(c) => py_str(c),
        None => "None".into(),
    };
    s.push_str(&format!(
        "with DAG(\n    dag_id={},\n    schedule={schedule},\n    start_date=pendulum.datetime(2026, 1, 1, tz={}),\n    catchup=False,\n    max_active_runs=1,\n    tags=[\"mlship\"],\n) as dag:\n",
        py_str(&dag_id),
        py_str(&plan.timezone)
    ));
    for (stage, _) in &plan.stages {
        let args: Vec<String> = run_args(plan, Some(stage))
            .iter()
            .map(|a| py_str(a))
            .collect();
        s.push_str(&format!(
            "    {} = BashOperator(\n        task_id={},\n        bash_command=\"cd \" + shlex.quote(PROJECT) + \" && \" + \" \".join(shlex.quote(a) for a in [MLSHIP, {}]),\n    )\n",
            var(stage),
            py_str(&task_name(stage)),
            args.join(", ")
        ));
    }
    for (stage, ups) in &plan.stages {
        for u in ups {
            s.push_str(&format!("    {} >> {}\n", var(u), var(stage)));
        }
    }
    Ok(vec![(format!("dags/{dag_id}.py"), s)])
}

/// A Python identifier for a stage's task.
fn var(stage: &str) -> String {
    let s: String = stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("stage_{s}")
}

fn required<'a>(v: &'a Option<String>, field: &'static str, why: &str) -> Result<&'a str> {
    v.as_deref().ok_or(Error::Invalid {
        field,
        why: why.into(),
    })
}

/// The container every task and job runs: mlship as the image's user, read-only root.
fn container(plan: &PipelinePlan, image: &str, args: Vec<String>) -> Json {
    let mut c = json!({
        "name": "main",
        "image": image,
        "command": [crate::layout::BINARY],
        "args": args,
        "workingDir": plan.workdir,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if let Some(secret) = &plan.secret {
        c["envFrom"] = json!([{"secretRef": {"name": secret}}]);
    }
    c
}

fn yaml(v: &Json) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_default()
}

/// `cronworkflow.yaml`: an Argo CronWorkflow whose DAG has one task per stage.
pub fn argo(plan: &PipelinePlan) -> Result<Vec<File>> {
    check(plan)?;
    let image = required(
        &plan.image,
        "image",
        "Argo runs each stage in an image: pass --image or set [deploy] image in mlship.toml",
    )?;
    let cron = required(
        &plan.cron,
        "cron",
        "a CronWorkflow needs a schedule: pass --cron",
    )?;
    let tasks: Vec<Json> = plan
        .stages
        .iter()
        .map(|(stage, ups)| {
            let mut t = json!({
                "name": task_name(stage),
                "template": "stage",
                "arguments": {"parameters": [{"name": "stage", "value": stage}]},
            });
            if !ups.is_empty() {
                t["dependencies"] = json!(ups.iter().map(|u| task_name(u)).collect::<Vec<_>>());
            }
            t
        })
        .collect();
    let mut args = run_args(plan, Some("{{inputs.parameters.stage}}"));
    args.retain(|a| !a.is_empty());
    let mut metadata =
        json!({"name": plan.name, "labels": {"app.kubernetes.io/managed-by": "mlship"}});
    if let Some(ns) = &plan.namespace {
        metadata["namespace"] = json!(ns);
    }
    let doc = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": metadata,
        "spec": {
            "schedules": [cron],
            "timezone": plan.timezone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "workflowSpec": {
                "entrypoint": "pipeline",
                "templates": [
                    {"name": "pipeline", "dag": {"tasks": tasks}},
                    {
                        "name": "stage",
                        "inputs": {"parameters": [{"name": "stage"}]},
                        "container": container(plan, image, args),
                    },
                ],
            },
        },
    });
    Ok(vec![("cronworkflow.yaml".into(), yaml(&doc))])
}

/// `cronjob.yaml`: a Kubernetes CronJob running the whole pipeline (`mlship run`) in one pod,
/// never two at once.
pub fn kubernetes(plan: &PipelinePlan) -> Result<Vec<File>> {
    check(plan)?;
    let image = required(
        &plan.image,
        "image",
        "the CronJob runs the project's image: pass --image or set [deploy] image in mlship.toml",
    )?;
    let cron = required(
        &plan.cron,
        "cron",
        "a CronJob needs a schedule: pass --cron",
    )?;
    let mut metadata = json!({"name": plan.name, "labels": {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "mlship"}});
    if let Some(ns) = &plan.namespace {
        metadata["namespace"] = json!(ns);
    }
    let doc = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": {
            "schedule": cron,
            "timeZone": plan.timezone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 1,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": plan.name}},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {
                                "runAsNonRoot": true,
                                "runAsUser": crate::layout::UID,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [container(plan, image, run_args(plan, None))],
                        },
                    },
                },
            },
        },
    });
    Ok(vec![("cronjob.yaml".into(), yaml(&doc))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PipelinePlan {
        PipelinePlan {
            name: "retrain".into(),
            stages: vec![
                ("prepare".into(), vec![]),
                ("train".into(), vec!["prepare".into()]),
                ("evaluate".into(), vec!["prepare".into(), "train".into()]),
            ],
            cron: Some("0 3 * * *".into()),
            timezone: "Europe/Lisbon".into(),
            image: Some("registry.example/retrain:1".into()),
            namespace: None,
            workdir: "/project".into(),
            sync_data: true,
            secret: Some("retrain-remote".into()),
        }
    }

    #[test]
    fn every_target_has_one_task_per_stage_and_the_edges() {
        let a = &airflow(&plan()).unwrap()[0].1;
        assert!(a.contains("stage_prepare >> stage_train"), "{a}");
        assert!(a.contains("\"--pull\", \"--push\""), "{a}");
        let g = &argo(&plan()).unwrap()[0].1;
        assert!(
            g.contains("kind: CronWorkflow") && g.contains("- 0 3 * * *"),
            "{g}"
        );
        assert!(g.contains("dependencies:"), "{g}");
        let k = &kubernetes(&plan()).unwrap()[0].1;
        assert!(
            k.contains("concurrencyPolicy: Forbid") && k.contains("timeZone: Europe/Lisbon"),
            "{k}"
        );
    }

    #[test]
    fn missing_settings_are_named() {
        let mut p = plan();
        p.image = None;
        assert!(argo(&p).unwrap_err().to_string().contains("--image"));
        assert!(kubernetes(&p).unwrap_err().to_string().contains("--image"));
        assert!(airflow(&p).is_ok(), "Airflow runs on its workers, no image");
        let mut p = plan();
        p.cron = Some("every day".into());
        assert!(airflow(&p).unwrap_err().to_string().contains("five fields"));
    }
}
