# Written by mlship deploy render --target terraform.

output "repository_url" {
  description = "Push the image here: mlship image push image.tar <repository_url>:<image_tag>."
  value       = aws_ecr_repository.this.repository_url
}

output "url" {
  description = "The load balancer's address."
  value       = "http://${aws_lb.this.dns_name}"
}

output "cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "service_names" {
  value = { for k, s in aws_ecs_service.this : k => s.name }
}

output "log_group" {
  value = aws_cloudwatch_log_group.this.name
}
