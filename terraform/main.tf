data "google_project" "this" {
  project_id = var.project_id
}

locals {
  zone = coalesce(var.zone, "${var.region}-b")

  labels = merge(var.labels, { app = "cloudsql-cache" })

  # Pub/Sub topic per cached table: <topic.prefix>.<db>.<table> (Debezium's naming).
  table_topics = { for t in var.tables : t => "${var.topic_prefix}.${t}" }

  heartbeat_topic = "heartbeat.${var.topic_prefix}"
  signal_topic    = var.debezium_signal_table == "" ? {} : { (var.debezium_signal_table) = "${var.topic_prefix}.${var.debezium_signal_table}" }

  # Every topic Debezium may publish to must exist, or its publish fails and the connector stops.
  debezium_topics = merge(local.table_topics, local.signal_topic, { "__heartbeat" = local.heartbeat_topic })

  # How changes reach the cache: push runs the function (Cloud Run service); pull and kafka run
  # the worker (Cloud Run worker pool) instead.
  push   = var.delivery == "push"
  pull   = var.delivery == "pull"
  worker = var.delivery != "push"

  # Topics consumed from Pub/Sub (pushed to the function, or pulled by the worker): the tables
  # and the heartbeat (liveness, checkpoint), not the signal table.
  consumed_topics = merge(local.table_topics, { "__heartbeat" = local.heartbeat_topic })

  # Prefix of every consuming subscription's name; the dashboard and alerts select on it.
  push_subscription_prefix = "${var.name_prefix}-push."
  pull_subscription_prefix = "${var.name_prefix}-pull."
  subscription_prefix      = local.pull ? local.pull_subscription_prefix : local.push_subscription_prefix

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  services = toset([
    "compute.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "vpcaccess.googleapis.com",
  ])
}

# APIs stay enabled on destroy: other workloads in the project may use them.
resource "google_project_service" "apis" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
