# delivery = "pull" or "kafka": the long-running worker (worker/cmd) on a Cloud Run worker pool.
# It streams the pull subscriptions (pull) or joins a Kafka consumer group (kafka), applies
# hundreds of changes per cache call, and serves /metrics and /healthz on 8080. A fixed number of
# instances (worker_instances): worker pools do not scale on requests, and the backlog and lag
# alerts say when to add some.

locals {
  worker_image = coalesce(var.worker_image, var.function_image)

  worker_env = merge(
    local.runtime_env,
    { DELIVERY = var.delivery },
    local.pull ? {
      PUBSUB_SUBSCRIPTIONS = join(",", [for s in google_pubsub_subscription.pull : s.id]) # projects/P/subscriptions/S
      PULL_MAX_OUTSTANDING = tostring(var.pull_max_outstanding)
    } : {},
    local.kafka_worker_env,
  )
}

resource "google_cloud_run_v2_worker_pool" "worker" {
  count = local.worker ? 1 : 0

  name                = local.worker_name
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = local.labels

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.worker_instances
  }

  template {
    service_account = google_service_account.worker[0].email

    # Direct VPC egress (a worker pool takes no connector). Private ranges (Memorystore, Kafka's
    # brokers) go through the VPC, Google APIs directly; Kafka routes all traffic through it (see
    # local.worker_egress).
    vpc_access {
      egress = local.worker_egress

      network_interfaces {
        network    = local.network_id
        subnetwork = google_compute_subnetwork.main.id
        tags       = ["${var.name_prefix}-worker"]
      }
    }

    containers {
      name    = "worker"
      image   = local.worker_image
      command = var.worker_image == null ? ["/worker"] : null

      resources {
        limits = {
          cpu    = var.worker_cpu
          memory = var.worker_memory
        }
      }

      dynamic "env" {
        for_each = local.runtime_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      dynamic "env" {
        for_each = local.worker_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = local.runtime_files
        content {
          name       = volume_mounts.key
          mount_path = volume_mounts.value.dir
        }
      }

      # /healthz answers 200 only while the cache answers and the stream (or the Kafka group) is
      # connected: an instance that stays unhealthy is restarted.
      startup_probe {
        period_seconds    = 5
        timeout_seconds   = 3
        failure_threshold = 24 # two minutes to reach the cache and the queue
        http_get {
          path = "/healthz"
          port = 8080
        }
      }

      # Lenient: a cache outage also makes it unhealthy, and a restart does not help there; five
      # minutes catches a wedged process without churning through a short outage.
      liveness_probe {
        period_seconds    = 60
        timeout_seconds   = 5
        failure_threshold = 5
        http_get {
          path = "/healthz"
          port = 8080
        }
      }
    }

    # /metrics -> Managed Service for Prometheus (metrics.tf).
    dynamic "containers" {
      for_each = local.metrics_sidecar
      content {
        name  = containers.value.name
        image = containers.value.image
        args  = containers.value.args

        env {
          name  = "CDC_COLLECTOR_CONFIG"
          value = containers.value.config
        }

        dynamic "resources" {
          for_each = var.metrics_sidecar_limits == null ? [] : [var.metrics_sidecar_limits]
          content {
            limits = {
              cpu    = resources.value.cpu
              memory = resources.value.memory
            }
          }
        }
      }
    }

    dynamic "volumes" {
      for_each = local.runtime_files
      content {
        name = volumes.key
        secret {
          secret = volumes.value.secret
          items {
            version = "latest"
            path    = volumes.value.file
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
    google_secret_manager_secret_version.cache_config,
    google_secret_manager_secret_iam_member.runtime,
    google_pubsub_subscription_iam_member.worker_subscriber,
    google_project_iam_member.worker_kafka,
  ]
}
