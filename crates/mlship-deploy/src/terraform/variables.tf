# Written by mlship deploy render --target terraform. Values for this model are in terraform.tfvars.

variable "name" {
  description = "Name of the service, its ECR repository, cluster and load balancer."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "image_tag" {
  description = "Tag of the image the stable service runs (pushed with mlship image push)."
  type        = string
}

variable "canary_image_tag" {
  description = "Tag of the image the canary service runs; empty for the stable image."
  type        = string
  default     = ""
}

variable "canary_weight" {
  description = "Share of requests, 0-100, the load balancer sends to the canary."
  type        = number
  default     = 0
  validation {
    condition     = var.canary_weight >= 0 && var.canary_weight <= 100
    error_message = "canary_weight must be between 0 and 100."
  }
}

variable "desired_count" {
  description = "Number of stable tasks."
  type        = number
  default     = 2
}

variable "cpu" {
  description = "Fargate CPU units per task (1024 = one vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate memory per task, in MiB."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64, as the mlship binary in the image."
  type        = string
  default     = "X86_64"
}

variable "container_port" {
  description = "Port the mlship server listens on in the container."
  type        = number
  default     = 8080
}

variable "serve_args" {
  description = "Arguments of mlship serve; empty to run the image's own command."
  type        = list(string)
  default     = []
}

variable "registry_secret_arn" {
  description = "Secrets Manager secret with MLSHIP_STORE and MLSHIP_ARTIFACTS, to serve from a shared registry; empty for none."
  type        = string
  default     = ""
}

variable "vpc_id" {
  description = "VPC of the load balancer and the tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "allowed_cidrs" {
  description = "Networks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "internal" {
  description = "Whether the load balancer is internal."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days to keep the server's logs."
  type        = number
  default     = 30
}

variable "model_source" {
  description = "The model the image serves, for tags."
  type        = string
  default     = ""
}

variable "model_sha256" {
  description = "The sha256 of the model artifact, for tags."
  type        = string
  default     = ""
}
