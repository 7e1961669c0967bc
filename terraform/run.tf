# The handler as a Cloud Run service (delivery = "push"): Pub/Sub pushes to it (OIDC), it writes
# to Memorystore over private VPC egress. Ingress is internal-only: Pub/Sub push from this project
# counts as internal traffic, so nothing on the internet can reach the URL. The settings it shares
# with the worker (worker.tf) are the locals below.

locals {
  redis_ca_dir = "/secrets/redis-ca"
  config_dir   = "/config"

  # Settings the function and the worker share (their env contract: docs/contracts.md).
  runtime_env = merge(
    {
      REJECT_TOPIC     = google_pubsub_topic.reject.id # projects/P/topics/T
      SUMMARY_INTERVAL = var.function_summary_interval
      # Compact rows name no Debezium server; the checkpoint keeps them under topic.prefix.
      CACHE_SERVER_NAME = var.topic_prefix
    },
    var.cache_prefix == "" ? {} : { CACHE_PREFIX = var.cache_prefix },
    var.cache_config_yaml == "" ? {} : { CACHE_CONFIG = "${local.config_dir}/cache.yaml" },
    # memcached has no stream to park rejects in: REJECT_TOPIC above always takes them.
    local.redis ? { REDIS_CA_CERT = "${local.redis_ca_dir}/ca.pem" } : {
      CACHE_BACKEND               = "memcached"
      MEMCACHE_ADDRS              = join(",", local.memcache_addrs)
    },
  )

  # Variables read from Secret Manager (name => secret id), and secrets mounted as files
  # (volume name => directory, secret, file name).
  runtime_secret_env = local.redis ? { REDIS_URL = google_secret_manager_secret.redis_url[0].secret_id } : {}
  runtime_files = merge(
    local.redis ? { "redis-ca" = { dir = local.redis_ca_dir, secret = google_secret_manager_secret.redis_ca[0].secret_id, file = "ca.pem" } } : {},
    var.cache_config_yaml == "" ? {} : { "cache-config" = { dir = local.config_dir, secret = google_secret_manager_secret.cache_config[0].secret_id, file = "cache.yaml" } },
  )
}

resource "google_cloud_run_v2_service" "function" {
  count = local.push ? 1 : 0

  name                = local.function_name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    service_account                  = google_service_account.function[0].email
    max_instance_request_concurrency = var.function_concurrency
    timeout                          = "${var.ack_deadline_seconds}s"

    scaling {
      min_instance_count = var.function_min_instances
      max_instance_count = var.function_max_instances
    }

    vpc_access {
      # Only private ranges (Memorystore) go through the VPC; Pub/Sub (rejects) and logging use
      # Google's front ends directly.
      egress    = "PRIVATE_RANGES_ONLY"
      connector = var.vpc_egress == "connector" ? google_vpc_access_connector.function[0].id : null

      dynamic "network_interfaces" {
        for_each = var.vpc_egress == "direct" ? [1] : []
        content {
          network    = local.network_id
          subnetwork = google_compute_subnetwork.main.id
          tags       = ["${var.name_prefix}-function"]
        }
      }
    }

    containers {
      name  = "function"
      image = var.function_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.function_cpu
          memory = var.function_memory
        }
        cpu_idle          = var.function_cpu_idle
        startup_cpu_boost = true
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
        for_each = local.runtime_env
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

  # Secret versions and access must exist before the first revision starts.
  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_ca,
    google_secret_manager_secret_version.cache_config,
    google_secret_manager_secret_iam_member.runtime,
  ]
}
