# Debezium Server on a small Container-Optimized OS VM without external IP. Its whole
# configuration is the cloud-init document rendered here from ../debezium-server/.

locals {
  debezium_dir = "${path.module}/../debezium-server"

  # The column registry (compact format) lives in Redis: the VM keeps it in sync there. With
  # memcached there is none, and compact messages take keys and types from cache_config_yaml.
  registry_sync = var.message_format == "compact" && local.redis

  # Debezium matches table.include.list entries as regular expressions: escape the dots.
  # "\\\\." in HCL is the two characters \\ , which the properties parser reads as one \ .
  captured_tables = concat(var.tables, var.debezium_signal_table == "" ? [] : [var.debezium_signal_table])

  debezium_application_properties = templatefile("${local.debezium_dir}/application.properties", {
    project_id            = var.project_id
    topic_prefix          = var.topic_prefix
    db_user               = var.debezium_db_user
    server_id             = var.debezium_server_id
    table_include_list    = join(",", [for t in local.captured_tables : replace(t, ".", "\\\\.")])
    signal_table          = var.debezium_signal_table
    message_format        = var.message_format
    heartbeat_interval_ms = var.debezium_heartbeat_interval_ms
    sink                  = local.kafka ? "kafka" : "pubsub"
    kafka_bootstrap       = local.kafka_bootstrap
    kafka_auth            = var.kafka_auth
  })

  debezium_cloud_init = templatefile("${local.debezium_dir}/cloud-init.yaml.tftpl", {
    application_properties_b64 = base64encode(local.debezium_application_properties)
    jmx_metrics_b64            = filebase64("${local.debezium_dir}/jmx-metrics.yml")
    otel_config_b64            = filebase64("${local.debezium_dir}/otel-collector.yaml")
    data_disk_device           = "debezium-data"
    db_password_secret_version = "${google_secret_manager_secret.db_password.id}/versions/latest"
    sql_connection_name        = local.sql_connection_name
    debezium_image             = var.debezium_image
    cloudsql_proxy_image       = var.cloudsql_proxy_image
    otel_collector_image       = var.otel_collector_image
    java_max_ram_percent       = var.debezium_java_max_ram_percent
    kafka_auth                 = local.kafka ? var.kafka_auth : "none"
    # Compact format on Redis: the column registry sync (cache-schema-sync.timer).
    registry_sync            = local.registry_sync
    db_user                  = var.debezium_db_user
    redis_url_secret_version = local.registry_sync ? "${google_secret_manager_secret.redis_url[0].id}/versions/latest" : ""
    redis_ca_secret_version  = local.registry_sync ? "${google_secret_manager_secret.redis_ca[0].id}/versions/latest" : ""
    cache_prefix             = var.cache_prefix
    cachectl_image           = var.function_image
    cachectl_registry        = split("/", var.function_image)[0]
    schema_tables            = join(",", var.tables)
  })
}

# Offsets and schema history: outlive reboots and VM replacement.
resource "google_compute_disk" "debezium_data" {
  name   = "${var.name_prefix}-debezium-data"
  zone   = local.zone
  type   = "pd-balanced"
  size   = var.debezium_data_disk_gb
  labels = local.labels

  depends_on = [google_project_service.apis]
}

# Changing the rendered config replaces the VM (delete, then create): cloud-init reruns, the data
# disk is re-attached, and never two Debezium instances run at once.
resource "terraform_data" "debezium_config" {
  input = sha256(local.debezium_cloud_init)
}

resource "google_compute_instance" "debezium" {
  name         = "${var.name_prefix}-debezium"
  zone         = local.zone
  machine_type = var.debezium_machine_type
  tags         = ["${var.name_prefix}-debezium"]
  labels       = local.labels

  allow_stopping_for_update = true

  boot_disk {
    initialize_params {
      image = "cos-cloud/cos-stable"
      size  = 20
      type  = "pd-balanced"
    }
  }

  attached_disk {
    source      = google_compute_disk.debezium_data.id
    device_name = "debezium-data"
  }

  # No access_config block: no external IP. Egress to image registries goes through Cloud NAT.
  network_interface {
    subnetwork = google_compute_subnetwork.main.id
  }

  service_account {
    email  = google_service_account.debezium.email
    scopes = ["cloud-platform"] # access is bounded by the account's IAM roles
  }

  metadata = {
    user-data                 = local.debezium_cloud_init
    google-logging-enabled    = "true"
    google-monitoring-enabled = "true"
    enable-oslogin            = "TRUE"
    block-project-ssh-keys    = "TRUE"
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  lifecycle {
    replace_triggered_by = [terraform_data.debezium_config]
  }

  depends_on = [
    google_compute_router_nat.nat,
    google_secret_manager_secret_version.db_password,
    google_secret_manager_secret_iam_member.debezium_db_password,
    google_pubsub_topic_iam_member.debezium_publisher,
    google_managed_kafka_topic.cdc,
    google_project_iam_member.debezium_kafka,
    google_project_iam_member.debezium,
    google_sql_user.debezium,
  ]
}
