//! Terraform for AWS: ECR repository with a lifecycle policy, ECS cluster on Fargate, task
//! definitions and services (stable and canary), an application load balancer whose listener
//! weighs two target groups, the execution role, the log group and security groups.
//!
//! The `.tf` files are fixed text (kept `terraform fmt` clean, checked by a test); everything
//! that varies is a variable, set in the generated `terraform.tfvars`.

use crate::{Error, File, Plan, Result};

const MAIN: &str = include_str!("terraform/main.tf");
const VARIABLES: &str = include_str!("terraform/variables.tf");
const OUTPUTS: &str = include_str!("terraform/outputs.tf");

/// An HCL value.
enum V {
    Str(String),
    Num(u64),
    List(Vec<String>),
}

fn quote(s: &str) -> String {
    let json = serde_json::to_string(s).expect("strings serialize");
    // HCL templates would read ${ and %{; escape them to stay literal.
    json.replace("${", "$${").replace("%{", "%%{")
}

fn hcl(v: &V) -> String {
    match v {
        V::Str(s) => quote(s),
        V::Num(n) => n.to_string(),
        V::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|s| quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Renders `main.tf`, `variables.tf`, `outputs.tf`, `terraform.tfvars` and a README.
pub fn render(plan: &Plan) -> Result<Vec<File>> {
    plan.check()?;
    plan.check_fargate()?;
    // Load balancer and target group names are at most 32 characters ("NAME-canary").
    if plan.name.len() > 25 {
        return Err(Error::Invalid {
            field: "name",
            why: format!(
                "{:?} is longer than the 25 characters AWS leaves for load balancer target groups",
                plan.name
            ),
        });
    }
    let tag = plan
        .image
        .as_deref()
        .and_then(|i| i.rsplit('/').next())
        .and_then(|last| last.rsplit_once(':'))
        .map_or_else(|| "latest".to_string(), |(_, t)| t.to_string());
    let placeholder = |v: &[String], p: &str| {
        if v.is_empty() {
            vec![p.to_string()]
        } else {
            v.to_vec()
        }
    };
    let vars: Vec<(&str, V)> = vec![
        ("name", V::Str(plan.name.clone())),
        ("region", V::Str(plan.region.clone())),
        ("image_tag", V::Str(tag)),
        ("canary_weight", V::Num(plan.canary_weight.into())),
        ("desired_count", V::Num(plan.replicas.into())),
        ("cpu", V::Num(plan.cpu_millis.into())),
        ("memory", V::Num(plan.memory_mib.into())),
        ("serve_args", V::List(plan.serve_args.clone())),
        (
            "registry_secret_arn",
            V::Str(plan.registry_secret.clone().unwrap_or_default()),
        ),
        ("vpc_id", V::Str("vpc-REPLACE-ME".into())),
        (
            "public_subnet_ids",
            V::List(vec!["subnet-REPLACE-ME-PUBLIC".into()]),
        ),
        (
            "private_subnet_ids",
            V::List(placeholder(&plan.subnets, "subnet-REPLACE-ME-PRIVATE")),
        ),
        ("model_source", V::Str(plan.model.source.clone())),
        ("model_sha256", V::Str(plan.model.sha256.clone())),
    ];
    let width = vars.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut tfvars = String::from(
        "# Written by mlship deploy render --target terraform. Replace the REPLACE-ME values.\n",
    );
    for (k, v) in &vars {
        tfvars.push_str(&format!("{k:width$} = {}\n", hcl(v)));
    }
    Ok(vec![
        ("main.tf".into(), MAIN.into()),
        ("variables.tf".into(), VARIABLES.into()),
        ("outputs.tf".into(), OUTPUTS.into()),
        ("terraform.tfvars".into(), tfvars),
        ("README.md".into(), readme(plan)),
    ])
}

fn readme(plan: &Plan) -> String {
    format!(
        "# {name} on AWS with Terraform\n\nWritten by `mlship deploy render --target terraform` for {source}.\n\n1. Set `vpc_id` and the subnets in `terraform.tfvars`.\n2. Create the ECR repository first, push the image, then create the rest:\n\n```sh\nterraform init\nterraform apply -target=aws_ecr_repository.this\naws ecr get-login-password --region {region} | mlship image push --username AWS --password-stdin image.tar \"$(terraform output -raw repository_url):$(grep image_tag terraform.tfvars | cut -d'\"' -f2)\"\nterraform apply\ncurl -s \"$(terraform output -raw url)/v2/health/ready\"\n```\n\nA canary: push a second tag, set `canary_image_tag` and `canary_weight` (0-100), `terraform apply`. The listener weighs the stable and canary target groups; each ECS service rolls back a failed deployment on its own (deployment circuit breaker).\n\n`terraform fmt -check` passes on these files. `terraform validate` needs the AWS provider, which `terraform init` downloads from the Terraform registry: mlship's tests cannot reach it, so they check formatting and parse the files instead.\n",
        name = plan.name,
        source = plan.model.source,
        region = plan.region,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfvars_are_aligned_and_escaped() {
        let mut p = crate::sample();
        p.serve_args = vec!["iris=models:/iris@production".into(), "${x}".into()];
        let files = render(&p).unwrap();
        let tfvars = &files
            .iter()
            .find(|(n, _)| n == "terraform.tfvars")
            .unwrap()
            .1;
        assert!(tfvars.contains("image_tag           = \"1\"\n"), "{tfvars}");
        assert!(tfvars.contains("\"$${x}\""), "{tfvars}");
        let mut long = crate::sample();
        long.name = "a".repeat(26);
        assert!(render(&long).is_err());
    }
}
