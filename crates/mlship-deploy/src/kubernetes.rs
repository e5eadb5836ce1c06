//! Kubernetes manifests as typed objects (`k8s-openapi`, API 1.33), written as YAML: for a model,
//! a ConfigMap with the serve config, a Deployment, a Service, a HorizontalPodAutoscaler and a
//! PodDisruptionBudget; for the tracking server, a Deployment, a Service, a PodDisruptionBudget
//! and the store's Secret to fill in; each with a kustomization listing them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource,
    SecurityContext, Service, ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::layout::{BINARY, DEPLOY_CONFIG_DIR, LIVE, PORT, READY, TRACKING_PORT, UID};
use crate::{Error, File, Plan, Result, ServerPlan};

/// Renders a model's manifests; the Deployment runs `plan.image`.
pub fn render(plan: &Plan) -> Result<Vec<File>> {
    plan.check()?;
    let image = required_image(&plan.image)?;
    let config_name = format!("{}-config", plan.name);
    let labels = labels(&plan.name, "model-server");
    let meta = |name: &str| metadata(name, &plan.namespace, &labels);

    let config_map = ConfigMap {
        metadata: meta(&config_name),
        data: Some(
            [("mlship.toml".to_string(), plan.serve_toml.clone())]
                .into_iter()
                .collect(),
        ),
        ..ConfigMap::default()
    };

    let mut annotations = BTreeMap::new();
    annotations.insert("mlship.io/model".to_string(), plan.model.source.clone());
    annotations.insert(
        "mlship.io/model-sha256".to_string(),
        plan.model.sha256.clone(),
    );
    let container = Container {
        args: Some(vec![
            "--config".into(),
            format!("{DEPLOY_CONFIG_DIR}/mlship.toml"),
        ]),
        env: Some(vec![EnvVar {
            name: "MLSHIP_HOME".into(),
            value: Some("/tmp/mlship".into()),
            ..EnvVar::default()
        }]),
        env_from: plan.registry_secret.as_deref().map(env_from),
        startup_probe: Some(probe(READY, 2, 60)),
        liveness_probe: Some(probe(LIVE, 10, 3)),
        readiness_probe: Some(probe(READY, 5, 2)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: DEPLOY_CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            tmp_mount(),
        ]),
        ..container(image, PORT, plan.cpu_millis, plan.memory_mib)
    };
    let volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_name.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        tmp_volume("64Mi"),
    ];
    let deployment = deployment(
        meta(&plan.name),
        plan.replicas,
        annotations,
        container,
        volumes,
    );

    let hpa = HorizontalPodAutoscaler {
        metadata: meta(&plan.name),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: plan.name.clone(),
            },
            min_replicas: Some(plan.min_replicas as i32),
            max_replicas: plan.max_replicas as i32,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(plan.target_cpu_percent as i32),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    };

    let files = vec![
        ("configmap.yaml".to_string(), yaml(&config_map)),
        ("deployment.yaml".to_string(), yaml(&deployment)),
        (
            "service.yaml".to_string(),
            yaml(&service(meta(&plan.name), 80)),
        ),
        ("hpa.yaml".to_string(), yaml(&hpa)),
        (
            "pdb.yaml".to_string(),
            yaml(&disruption_budget(meta(&plan.name))),
        ),
    ];
    let mut out = with_kustomization(files, &plan.namespace);
    out.push(("README.md".into(), readme(plan)));
    Ok(out)
}

/// Renders the tracking server's manifests: `mlship server` replicas on the store the Secret
/// names (PostgreSQL and S3: the replicas keep no state of their own).
pub fn render_server(plan: &ServerPlan) -> Result<Vec<File>> {
    plan.check()?;
    let image = required_image(&plan.image)?;
    let labels = labels(&plan.name, "tracking-server");
    let meta = |name: &str| metadata(name, &plan.namespace, &labels);
    let container = Container {
        // Any mlship image carries the binary; its entrypoint serves models, so name the command.
        command: Some(vec![BINARY.into(), "server".into()]),
        args: Some(vec![
            "--host".into(),
            "0.0.0.0".into(),
            "--port".into(),
            TRACKING_PORT.to_string(),
        ]),
        env: Some(vec![
            EnvVar {
                name: "MLSHIP_HOME".into(),
                value: Some("/tmp/mlship".into()),
                ..EnvVar::default()
            },
            EnvVar {
                name: "RUST_LOG".into(),
                value: Some("info".into()),
                ..EnvVar::default()
            },
        ]),
        env_from: Some(env_from(&plan.secret)),
        startup_probe: Some(probe("/health", 2, 30)),
        liveness_probe: Some(probe("/health", 10, 3)),
        readiness_probe: Some(probe("/health", 5, 2)),
        volume_mounts: Some(vec![tmp_mount()]),
        ..container(image, TRACKING_PORT, plan.cpu_millis, plan.memory_mib)
    };
    // Registration unpacks a logged model under /tmp to validate it.
    let deployment = deployment(
        meta(&plan.name),
        plan.replicas,
        BTreeMap::new(),
        container,
        vec![tmp_volume("2Gi")],
    );
    let secret = Secret {
        metadata: meta(&plan.secret),
        type_: Some("Opaque".into()),
        string_data: Some(
            [
                (
                    "MLSHIP_STORE",
                    "postgres://USER:PASSWORD@HOST:5432/mlship".to_string(),
                ),
                ("MLSHIP_ARTIFACTS", "s3://BUCKET/PREFIX".to_string()),
                ("AWS_REGION", plan.region.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ),
        ..Secret::default()
    };
    let files = vec![
        ("deployment.yaml".to_string(), yaml(&deployment)),
        (
            "service.yaml".to_string(),
            yaml(&service(meta(&plan.name), TRACKING_PORT.into())),
        ),
        (
            "pdb.yaml".to_string(),
            yaml(&disruption_budget(meta(&plan.name))),
        ),
    ];
    let mut out = with_kustomization(files, &plan.namespace);
    // Not in the kustomization: its values are credentials, filled in and applied once, never
    // committed.
    out.push(("secret.example.yaml".into(), yaml(&secret)));
    out.push(("README.md".into(), server_readme(plan)));
    Ok(out)
}

fn required_image(image: &Option<String>) -> Result<String> {
    image.clone().ok_or(Error::Invalid {
        field: "image",
        why: "Kubernetes needs the image to run".into(),
    })
}

fn labels(name: &str, component: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", name),
        ("app.kubernetes.io/component", component),
        ("app.kubernetes.io/managed-by", "mlship"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn metadata(
    name: &str,
    namespace: &Option<String>,
    labels: &BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.clone(),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

/// Selects the pods of the workload `meta` names (by its `app.kubernetes.io/name` label).
fn selector(meta: &ObjectMeta) -> LabelSelector {
    let name = "app.kubernetes.io/name".to_string();
    let value = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(&name))
        .cloned()
        .unwrap_or_default();
    LabelSelector {
        match_labels: Some([(name, value)].into_iter().collect()),
        ..LabelSelector::default()
    }
}

fn env_from(secret: &str) -> Vec<EnvFromSource> {
    vec![EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: secret.to_string(),
            optional: Some(false),
        }),
        ..EnvFromSource::default()
    }]
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// The mlship container with what every workload shares: the port named `http`, requests and a
/// memory limit, a locked-down security context, and a drain before SIGTERM.
fn container(image: String, port: u16, cpu_millis: u32, memory_mib: u32) -> Container {
    let memory = Quantity(format!("{memory_mib}Mi"));
    Container {
        name: "mlship".into(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: port.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(
                [
                    ("cpu".to_string(), Quantity(format!("{cpu_millis}m"))),
                    ("memory".to_string(), memory.clone()),
                ]
                .into_iter()
                .collect(),
            ),
            limits: Some([("memory".to_string(), memory)].into_iter().collect()),
            ..ResourceRequirements::default()
        }),
        // Give the Service time to stop sending traffic before SIGTERM starts the drain.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: 5 }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }
}

fn tmp_volume(size: &str) -> Volume {
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(size.into())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A Deployment of one container as the image's non-root user, rolled one pod at a time with
/// none unavailable.
fn deployment(
    meta: ObjectMeta,
    replicas: u32,
    annotations: BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
) -> Deployment {
    let pod = PodSpec {
        containers: vec![container],
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(UID.into()),
            run_as_group: Some(UID.into()),
            fs_group: Some(UID.into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    let annotations = (!annotations.is_empty()).then_some(annotations);
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: selector(&meta),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: meta.labels.clone(),
                    annotations: annotations.clone(),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        metadata: ObjectMeta {
            annotations,
            ..meta
        },
        ..Deployment::default()
    }
}

fn service(meta: ObjectMeta, port: i32) -> Service {
    Service {
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: selector(&meta).match_labels,
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        metadata: meta,
        ..Service::default()
    }
}

fn disruption_budget(meta: ObjectMeta) -> PodDisruptionBudget {
    PodDisruptionBudget {
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(&meta)),
            ..PodDisruptionBudgetSpec::default()
        }),
        metadata: meta,
        ..PodDisruptionBudget::default()
    }
}

/// The files followed by a kustomization that lists them (in their namespace, if any).
fn with_kustomization(files: Vec<File>, namespace: &Option<String>) -> Vec<File> {
    let mut kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    });
    if let Some(ns) = namespace {
        kustomization["namespace"] = ns.clone().into();
    }
    let mut out = files;
    out.push(("kustomization.yaml".into(), yaml(&kustomization)));
    out
}

fn yaml<T: serde::Serialize>(v: &T) -> String {
    format!(
        "# Written by mlship deploy render; review, commit, then apply.\n{}",
        serde_yaml_ng::to_string(v).expect("manifests serialize")
    )
}

fn readme(plan: &Plan) -> String {
    let ns = plan
        .namespace
        .as_ref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let secret = match &plan.registry_secret {
        Some(s) => format!(
            "The replicas serve from the shared registry. Create the Secret they read first:\n\n```sh\nkubectl{ns} create secret generic {s} \\\n  --from-literal=MLSHIP_STORE=postgres://USER:PASSWORD@HOST:5432/mlship \\\n  --from-literal=MLSHIP_ARTIFACTS=s3://BUCKET/PREFIX \\\n  --from-literal=AWS_REGION={}\n```\n\n",
            plan.region
        ),
        None => {
            "The model is inside the image (`mlship image build`); no Secret is needed.\n\n".into()
        }
    };
    format!(
        "# {name} on Kubernetes\n\nWritten by `mlship deploy render --target kubernetes` for {source}.\n\n{secret}Apply:\n\n```sh\nkubectl apply -k .\nkubectl{ns} rollout status deployment/{name}\nkubectl{ns} port-forward service/{name} 8080:80\ncurl -s localhost:8080/v2/health/ready\n```\n\nFiles: `deployment.yaml` (probes on {LIVE} and {READY}, non-root, read-only root file system, graceful termination), `service.yaml`, `hpa.yaml` (CPU {cpu}%, {min}-{max} replicas), `pdb.yaml`, `configmap.yaml` (the `mlship.toml` the server reads).\n",
        name = plan.name,
        source = plan.model.source,
        cpu = plan.target_cpu_percent,
        min = plan.min_replicas,
        max = plan.max_replicas,
    )
}

fn server_readme(plan: &ServerPlan) -> String {
    let ns = plan
        .namespace
        .as_ref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    format!(
        r#"# {name}: the mlship tracking server on Kubernetes

Written by `mlship deploy render --target kubernetes --tracking-server`. The replicas run
`mlship server` (MLflow's tracking and registry API, port {port}) and keep no state of their own:
they share one PostgreSQL database and one S3 bucket, named in the Secret `{secret}`.

Create the Secret first, with your values (from `secret.example.yaml`, or directly; never commit
the filled-in file):

```sh
kubectl{ns} create secret generic {secret} \
  --from-literal=MLSHIP_STORE=postgres://USER:PASSWORD@HOST:5432/mlship \
  --from-literal=MLSHIP_ARTIFACTS=s3://BUCKET/PREFIX \
  --from-literal=AWS_REGION={region}
```

Add `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` unless the pods get their S3 access from
their service account. The first replica to start creates or upgrades the schema. Then:

```sh
kubectl apply -k .
kubectl{ns} rollout status deployment/{name}
kubectl{ns} port-forward service/{name} {port}:{port}
export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}
```

Files: `deployment.yaml` (probes on /health, non-root, read-only root file system, graceful
termination), `service.yaml`, `pdb.yaml`, `secret.example.yaml` (not in the kustomization).
"#,
        name = plan.name,
        port = TRACKING_PORT,
        secret = plan.secret,
        region = plan.region,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_carry_probes_security_and_the_secret() {
        let mut p = crate::sample();
        p.registry_secret = Some("mlship-registry".into());
        p.namespace = Some("models".into());
        let files = render(&p).unwrap();
        let get = |n: &str| &files.iter().find(|(f, _)| f == n).unwrap().1;
        let d: serde_yaml_ng::Value = serde_yaml_ng::from_str(get("deployment.yaml")).unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], READY);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], LIVE);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "mlship-registry");
        assert_eq!(d["metadata"]["namespace"], "models");
        assert_eq!(d["kind"], "Deployment");
        assert!(get("kustomization.yaml").contains("namespace: models"));
        let mut q = crate::sample();
        q.image = None;
        assert!(render(&q).unwrap_err().to_string().starts_with("image:"));
    }

    #[test]
    fn the_tracking_server_runs_on_the_secret_store() {
        let plan = ServerPlan {
            name: "tracking".into(),
            image: Some("registry.example.com/mlship:1".into()),
            namespace: Some("mlops".into()),
            replicas: 2,
            cpu_millis: 500,
            memory_mib: 256,
            region: "eu-west-1".into(),
            secret: "mlship-store".into(),
        };
        let files = render_server(&plan).unwrap();
        let get = |n: &str| &files.iter().find(|(f, _)| f == n).unwrap().1;
        let d: serde_yaml_ng::Value = serde_yaml_ng::from_str(get("deployment.yaml")).unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"][1], "server");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
        assert_eq!(c["ports"][0]["containerPort"], 5000);
        assert_eq!(c["envFrom"][0]["secretRef"]["name"], "mlship-store");
        assert_eq!(
            d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
            "tracking"
        );
        let k = get("kustomization.yaml");
        assert!(
            k.contains("namespace: mlops") && !k.contains("secret"),
            "{k}"
        );
        let s: serde_yaml_ng::Value = serde_yaml_ng::from_str(get("secret.example.yaml")).unwrap();
        assert_eq!(s["kind"], "Secret");
        assert_eq!(s["metadata"]["name"], "mlship-store");
        let mut bad = plan.clone();
        bad.secret = "Bad_Name".into();
        assert!(render_server(&bad).is_err());
        bad = plan;
        bad.image = None;
        assert!(
            render_server(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("image:")
        );
    }
}
