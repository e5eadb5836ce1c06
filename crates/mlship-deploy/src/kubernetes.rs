//! Kubernetes manifests as typed objects (`k8s-openapi`, API 1.33), written as YAML: a
//! ConfigMap with the serve config, a Deployment, a Service, a HorizontalPodAutoscaler, a
//! PodDisruptionBudget, and a kustomization listing them.

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
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext,
    Service, ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::layout::{DEPLOY_CONFIG_DIR, LIVE, PORT, READY, UID};
use crate::{Error, File, Plan, Result};

/// Renders the manifests; the Deployment runs `plan.image`.
pub fn render(plan: &Plan) -> Result<Vec<File>> {
    plan.check()?;
    let image = plan.image.clone().ok_or(Error::Invalid {
        field: "image",
        why: "Kubernetes needs the image to run".into(),
    })?;
    let config_name = format!("{}-config", plan.name);
    let labels = plan.labels();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_string()),
        namespace: plan.namespace.clone(),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let selector = LabelSelector {
        match_labels: Some(
            [("app.kubernetes.io/name".to_string(), plan.name.clone())]
                .into_iter()
                .collect(),
        ),
        ..LabelSelector::default()
    };

    let config_map = ConfigMap {
        metadata: meta(&config_name),
        data: Some(
            [("mlship.toml".to_string(), plan.serve_toml.clone())]
                .into_iter()
                .collect(),
        ),
        ..ConfigMap::default()
    };

    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let mut annotations = BTreeMap::new();
    annotations.insert("mlship.io/model".to_string(), plan.model.source.clone());
    annotations.insert(
        "mlship.io/model-sha256".to_string(),
        plan.model.sha256.clone(),
    );
    let resources = ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), Quantity(format!("{}m", plan.cpu_millis))),
                (
                    "memory".to_string(),
                    Quantity(format!("{}Mi", plan.memory_mib)),
                ),
            ]
            .into_iter()
            .collect(),
        ),
        limits: Some(
            [(
                "memory".to_string(),
                Quantity(format!("{}Mi", plan.memory_mib)),
            )]
            .into_iter()
            .collect(),
        ),
        ..ResourceRequirements::default()
    };
    let container = Container {
        name: "mlship".into(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(vec![
            "--config".into(),
            format!("{DEPLOY_CONFIG_DIR}/mlship.toml"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT.into(),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![EnvVar {
            name: "MLSHIP_HOME".into(),
            value: Some("/tmp/mlship".into()),
            ..EnvVar::default()
        }]),
        env_from: plan.registry_secret.as_ref().map(|s| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: s.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        }),
        resources: Some(resources),
        startup_probe: Some(probe(READY, 2, 60)),
        liveness_probe: Some(probe(LIVE, 10, 3)),
        readiness_probe: Some(probe(READY, 5, 2)),
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
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: DEPLOY_CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
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
        volumes: Some(vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: config_name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("64Mi".into())),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    let deployment = Deployment {
        metadata: ObjectMeta {
            annotations: Some(annotations.clone()),
            ..meta(&plan.name)
        },
        spec: Some(DeploymentSpec {
            replicas: Some(plan.replicas as i32),
            selector: selector.clone(),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };

    let service = Service {
        metadata: meta(&plan.name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: selector.match_labels.clone(),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };

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

    let pdb = PodDisruptionBudget {
        metadata: meta(&plan.name),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    };

    let files = vec![
        ("configmap.yaml".to_string(), yaml(&config_map)),
        ("deployment.yaml".to_string(), yaml(&deployment)),
        ("service.yaml".to_string(), yaml(&service)),
        ("hpa.yaml".to_string(), yaml(&hpa)),
        ("pdb.yaml".to_string(), yaml(&pdb)),
    ];
    let mut kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
    });
    if let Some(ns) = &plan.namespace {
        kustomization["namespace"] = ns.clone().into();
    }
    let mut out = files;
    out.push(("kustomization.yaml".into(), yaml(&kustomization)));
    out.push(("README.md".into(), readme(plan)));
    Ok(out)
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
}
