# Secrets live in Secret Manager; Cloud Run and the VM read them at start. Their values are also
# in Terraform state: keep the state in a private, access-controlled bucket.

resource "random_password" "debezium_db" {
  length  = 32
  special = false # no quoting problems in env files or SQL; 32 alphanumerics is ~190 bits
}

locals {
  debezium_db_password = var.debezium_db_password != null ? var.debezium_db_password : random_password.debezium_db.result
}

resource "google_secret_manager_secret" "db_password" {
  secret_id = "${var.name_prefix}-debezium-db-password"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "db_password" {
  secret      = google_secret_manager_secret.db_password.id
  secret_data = local.debezium_db_password
}

# REDIS_URL with the AUTH string: rediss:// because in-transit encryption is on.
resource "google_secret_manager_secret" "redis_url" {
  count = local.redis ? 1 : 0

  secret_id = "${var.name_prefix}-redis-url"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_url" {
  count = local.redis ? 1 : 0

  secret      = google_secret_manager_secret.redis_url[0].id
  secret_data = "rediss://:${google_redis_instance.cache[0].auth_string}@${google_redis_instance.cache[0].host}:${google_redis_instance.cache[0].port}/0"
}

# The Memorystore server CA(s), mounted as a file for REDIS_CA_CERT. All listed certs are
# concatenated so a CA rotation keeps working until the old one is removed.
resource "google_secret_manager_secret" "redis_ca" {
  count = local.redis ? 1 : 0

  secret_id = "${var.name_prefix}-redis-ca"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  count = local.redis ? 1 : 0

  secret      = google_secret_manager_secret.redis_ca[0].id
  secret_data = join("\n", [for c in google_redis_instance.cache[0].server_ca_certs : trimspace(c.cert)])
}

# Cloud Run mounts files only from secrets (or buckets), so the handler's YAML config is one too.
resource "google_secret_manager_secret" "cache_config" {
  count = var.cache_config_yaml == "" ? 0 : 1

  secret_id = "${var.name_prefix}-cache-config"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "cache_config" {
  count = var.cache_config_yaml == "" ? 0 : 1

  secret      = google_secret_manager_secret.cache_config[0].id
  secret_data = var.cache_config_yaml
}
