# Written by mlship deploy render --target terraform: an mlship model server on Amazon ECS
# (Fargate) behind an application load balancer with a stable and a canary target group.
# Review, commit, then: terraform init && terraform apply.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

locals {
  stable_image = "${aws_ecr_repository.this.repository_url}:${var.image_tag}"
  canary_image = "${aws_ecr_repository.this.repository_url}:${coalesce(var.canary_image_tag, var.image_tag)}"
  secrets = var.registry_secret_arn == "" ? [] : [
    for key in ["MLSHIP_STORE", "MLSHIP_ARTIFACTS"] : {
      name      = key
      valueFrom = "${var.registry_secret_arn}:${key}::"
    }
  ]
  tags = {
    "mlship.io/model"        = var.model_source
    "mlship.io/model-sha256" = var.model_sha256
  }
}

# The image registry: tagged images kept to the last 30, untagged ones expired after a week.
resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the last 30 images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 30
        }
        action = { type = "expire" }
      }
    ]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

# The role ECS uses to pull the image, write logs and read the registry secret.
resource "aws_iam_role" "execution" {
  name = "${var.name}-execution"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "secret" {
  count = var.registry_secret_arn == "" ? 0 : 1
  name  = "${var.name}-registry-secret"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [var.registry_secret_arn]
    }]
  })
}

resource "aws_ecs_task_definition" "this" {
  for_each                 = { stable = local.stable_image, canary = local.canary_image }
  family                   = "${var.name}-${each.key}"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  container_definitions = jsonencode([{
    name                   = "mlship"
    image                  = each.value
    essential              = true
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    command                = length(var.serve_args) > 0 ? var.serve_args : null
    portMappings = [{
      name          = "http"
      containerPort = var.container_port
      protocol      = "tcp"
      appProtocol   = "http"
    }]
    environment = [{ name = "MLSHIP_HOME", value = "/tmp/mlship" }]
    secrets     = local.secrets
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/mlship", "health", "--url", "http://127.0.0.1:${var.container_port}/health"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 10
    }
    stopTimeout = 30
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  tags = local.tags
}

resource "aws_security_group" "lb" {
  name        = "${var.name}-lb"
  description = "HTTP to the ${var.name} load balancer"
  vpc_id      = var.vpc_id
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = local.tags
}

resource "aws_security_group" "service" {
  name        = "${var.name}-service"
  description = "The load balancer to the ${var.name} tasks"
  vpc_id      = var.vpc_id
  ingress {
    from_port       = var.container_port
    to_port         = var.container_port
    protocol        = "tcp"
    security_groups = [aws_security_group.lb.id]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = local.tags
}

resource "aws_lb" "this" {
  name               = var.name
  load_balancer_type = "application"
  internal           = var.internal
  security_groups    = [aws_security_group.lb.id]
  subnets            = var.public_subnet_ids
  tags               = local.tags
}

# Two target groups, one per service; the listener splits traffic between them by weight.
resource "aws_lb_target_group" "this" {
  for_each             = toset(["stable", "canary"])
  name                 = "${var.name}-${each.key}"
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 15
  health_check {
    path                = "/v2/health/ready"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "forward"
    forward {
      target_group {
        arn    = aws_lb_target_group.this["stable"].arn
        weight = 100 - var.canary_weight
      }
      target_group {
        arn    = aws_lb_target_group.this["canary"].arn
        weight = var.canary_weight
      }
    }
  }
  tags = local.tags
}

resource "aws_ecs_service" "this" {
  for_each        = { stable = var.desired_count, canary = var.canary_weight > 0 ? 1 : 0 }
  name            = "${var.name}-${each.key}"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this[each.key].arn
  desired_count   = each.value
  launch_type     = "FARGATE"
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  deployment_maximum_percent         = 200
  deployment_minimum_healthy_percent = 100
  health_check_grace_period_seconds  = 30
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.this[each.key].arn
    container_name   = "mlship"
    container_port   = var.container_port
  }
  depends_on = [aws_lb_listener.http]
  tags       = local.tags
}
