# Cloud SQL for MySQL 8: created here (binlog on, private IP only) or an existing instance by name.
# Either way Debezium reaches it through the Cloud SQL Auth Proxy on its private IP.

# Private services access: the VPC peering Cloud SQL's private IP (and Memorystore for
# Memcached) lives behind. Created with a Cloud SQL instance created here, or for Memcached in a
# VPC created here; an existing VPC that reaches Cloud SQL's private IP has it already.
locals {
  psa_create = var.cloudsql_create || (local.memcache_create && var.network_name == "")
}

resource "google_compute_global_address" "psa" {
  count = local.psa_create ? 1 : 0

  name          = "${var.name_prefix}-psa"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = local.network_id
}

resource "google_service_networking_connection" "psa" {
  count = local.psa_create ? 1 : 0

  network                 = local.network_id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.psa[0].name]

  depends_on = [google_project_service.apis]
}

resource "google_sql_database_instance" "mysql" {
  count = var.cloudsql_create ? 1 : 0

  name                = var.cloudsql_instance_name
  region              = var.region
  database_version    = "MYSQL_8_0"
  deletion_protection = var.deletion_protection

  settings {
    tier              = var.cloudsql_tier
    edition           = "ENTERPRISE" # db-custom-* tiers; Enterprise Plus uses db-perf-optimized-*
    availability_type = var.cloudsql_availability_type
    user_labels       = local.labels

    ip_configuration {
      ipv4_enabled    = false # no public IP
      private_network = local.network_self_link
    }

    backup_configuration {
      enabled            = true # binary logging requires automated backups
      binary_log_enabled = true
      start_time         = "03:00"
      # Binlogs are kept this long: the longest Debezium outage that resumes without a snapshot.
      transaction_log_retention_days = var.binlog_retention_days
    }

    # Explicit although they are the MySQL 8 defaults: Debezium needs full row images.
    database_flags {
      name  = "binlog_row_image"
      value = "full"
    }
  }

  depends_on = [google_service_networking_connection.psa]
}

# API-created users get the broad cloudsqlsuperuser role: narrow it to Debezium's grants with
# the SQL in debezium-server/README.md.
resource "google_sql_user" "debezium" {
  count = var.cloudsql_create ? 1 : 0

  name     = var.debezium_db_user
  instance = google_sql_database_instance.mysql[0].name
  host     = "%"
  password = local.debezium_db_password
}

data "google_sql_database_instance" "existing" {
  count = var.cloudsql_create ? 0 : 1

  name = var.cloudsql_instance_name
}

locals {
  sql_connection_name = var.cloudsql_create ? google_sql_database_instance.mysql[0].connection_name : data.google_sql_database_instance.existing[0].connection_name
}
