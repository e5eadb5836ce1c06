//! Amazon ECS on Fargate: a task definition and a service, as the JSON that
//! `aws ecs register-task-definition --cli-input-json` and `aws ecs create-service
//! --cli-input-json` take.

use serde_json::{Value, json};

use crate::layout::{PORT, UID, health_command};
use crate::{Error, File, Plan, Result};

/// Renders `task-definition.json`, `service.json` and a README.
pub fn render(plan: &Plan) -> Result<Vec<File>> {
    plan.check()?;
    plan.check_fargate()?;
    let image = plan.image.clone().ok_or(Error::Invalid {
        field: "image",
        why: "ECS needs the image to run (the one `mlship image push` pushed)".into(),
    })?;
    let task = task_definition(plan, &image);
    let subnets = if plan.subnets.is_empty() {
        vec!["subnet-REPLACE-ME".to_string()]
    } else {
        plan.subnets.clone()
    };
    let groups = if plan.security_groups.is_empty() {
        vec!["sg-REPLACE-ME".to_string()]
    } else {
        plan.security_groups.clone()
    };
    let service = json!({
        "cluster": plan.name,
        "serviceName": plan.name,
        "taskDefinition": plan.name,
        "desiredCount": plan.replicas,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100
        },
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": groups,
                "assignPublicIp": "DISABLED"
            }
        },
        "enableExecuteCommand": false,
        "propagateTags": "SERVICE",
        "tags": tags(plan),
    });
    Ok(vec![
        ("task-definition.json".into(), pretty(&task)),
        ("service.json".into(), pretty(&service)),
        ("README.md".into(), readme(plan)),
    ])
}

/// The Fargate task definition; Terraform embeds the same container definition.
pub(crate) fn task_definition(plan: &Plan, image: &str) -> Value {
    json!({
        "family": plan.name,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": plan.cpu_millis.to_string(),
        "memory": plan.memory_mib.to_string(),
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": cpu_architecture()},
        "executionRoleArn": format!("arn:aws:iam::ACCOUNT_ID:role/{}-execution", plan.name),
        "containerDefinitions": [container(plan, image)],
        "tags": tags(plan),
    })
}

pub(crate) fn container(plan: &Plan, image: &str) -> Value {
    let mut c = json!({
        "name": "mlship",
        "image": image,
        "essential": true,
        "user": format!("{UID}:{UID}"),
        "readonlyRootFilesystem": true,
        "portMappings": [{"name": "http", "containerPort": PORT, "protocol": "tcp", "appProtocol": "http"}],
        "environment": [{"name": "MLSHIP_HOME", "value": "/tmp/mlship"}],
        "healthCheck": {
            "command": std::iter::once("CMD".to_string()).chain(health_command()).collect::<Vec<_>>(),
            "interval": 10,
            "timeout": 3,
            "retries": 3,
            "startPeriod": 10
        },
        "stopTimeout": 30,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": format!("/ecs/{}", plan.name),
                "awslogs-region": plan.region,
                "awslogs-stream-prefix": "mlship",
                "awslogs-create-group": "true"
            }
        },
        "mountPoints": [],
        "volumesFrom": []
    });
    if !plan.serve_args.is_empty() {
        c["command"] = json!(plan.serve_args);
    }
    if let Some(arn) = &plan.registry_secret {
        c["secrets"] = json!(
            ["MLSHIP_STORE", "MLSHIP_ARTIFACTS"]
                .iter()
                .map(|k| json!({"name": k, "valueFrom": format!("{arn}:{k}::")}))
                .collect::<Vec<_>>()
        );
    }
    c
}

fn cpu_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "ARM64"
    } else {
        "X86_64"
    }
}

fn tags(plan: &Plan) -> Value {
    json!([
        {"key": "mlship.io/model", "value": plan.model.source},
        {"key": "mlship.io/model-sha256", "value": plan.model.sha256},
    ])
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON serializes") + "\n"
}

fn readme(plan: &Plan) -> String {
    format!(
        "# {name} on Amazon ECS (Fargate)\n\nWritten by `mlship deploy render --target ecs` for {source}.\n\nReplace `ACCOUNT_ID` in `task-definition.json` and the subnets and security groups in `service.json` (or set `subnets` and `security_groups` under `[deploy]` in mlship.toml), then:\n\n```sh\naws ecs create-cluster --cluster-name {name}\naws logs create-log-group --log-group-name /ecs/{name}\naws ecs register-task-definition --cli-input-json file://task-definition.json\naws ecs create-service --cli-input-json file://service.json\n```\n\nThe service runs with the deployment circuit breaker and automatic rollback on; the container's health check is `mlship health`.\n",
        name = plan.name,
        source = plan.model.source,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_and_service_have_health_logs_and_circuit_breaker() {
        let mut p = crate::sample();
        p.registry_secret =
            Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:mlship".into());
        p.serve_args = vec!["iris=models:/iris@production".into()];
        let files = render(&p).unwrap();
        let task: Value = serde_json::from_str(&files[0].1).unwrap();
        let c = &task["containerDefinitions"][0];
        assert_eq!(c["healthCheck"]["command"][0], "CMD");
        assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
        assert_eq!(c["portMappings"][0]["containerPort"], 8080);
        assert_eq!(c["command"][0], "iris=models:/iris@production");
        assert!(
            c["secrets"][0]["valueFrom"]
                .as_str()
                .unwrap()
                .ends_with(":MLSHIP_STORE::")
        );
        let service: Value = serde_json::from_str(&files[1].1).unwrap();
        assert_eq!(
            service["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"],
            true
        );
    }
}
