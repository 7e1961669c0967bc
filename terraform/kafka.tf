# delivery = "kafka": Debezium publishes to Kafka, one topic per table, and the Kafka worker (a
# consumer group, on the Cloud Run worker pool) applies the changes. Either a Managed Service for
# Apache Kafka cluster in the VPC created here, or an existing cluster's bootstrap address.

locals {
  kafka         = var.delivery == "kafka"
  kafka_create  = local.kafka && var.kafka_bootstrap == ""
  kafka_cluster = "${var.name_prefix}-kafka"

  # Managed Kafka's bootstrap DNS name, created in the subnet (port 9092, TLS + SASL).
  kafka_bootstrap = local.kafka_create ? "bootstrap.${local.kafka_cluster}.${var.region}.managedkafka.${var.project_id}.cloud.goog:9092" : var.kafka_bootstrap

  # Parked messages (KAFKA_DLQ_TOPIC), on the cluster created here. An existing cluster parks on
  # the Pub/Sub reject topic instead (REJECT_TOPIC), which Terraform creates either way.
  kafka_dlq_topic = "${var.name_prefix}-rejected"

  # The worker's Kafka settings (worker/config.go): every table topic and the heartbeat, one
  # consumer group per deployment, Google's OAUTHBEARER over TLS for Managed Kafka.
  kafka_worker_env = local.kafka ? merge(
    {
      KAFKA_BROKERS = local.kafka_bootstrap
      KAFKA_TOPICS  = join(",", values(local.consumed_topics))
      KAFKA_GROUP   = "${var.name_prefix}-cache"
      KAFKA_TLS     = var.kafka_auth == "google" ? "1" : "0"
      KAFKA_SASL    = var.kafka_auth == "google" ? "oauthbearer" : "none"
    },
    local.kafka_create ? { KAFKA_DLQ_TOPIC = local.kafka_dlq_topic } : {},
  ) : {}

  # Managed Kafka's bootstrap and broker names are in a DNS zone private to the VPC: the Kafka
  # worker sends all its traffic through the VPC (Google APIs via Private Google Access, the
  # rest via Cloud NAT) so that it resolves and reaches them there. Pull needs only Memorystore.
  worker_egress = local.kafka ? "ALL_TRAFFIC" : "PRIVATE_RANGES_ONLY"
}

resource "google_project_service" "managedkafka" {
  count = local.kafka_create ? 1 : 0

  project            = var.project_id
  service            = "managedkafka.googleapis.com"
  disable_on_destroy = false
}

resource "google_managed_kafka_cluster" "cdc" {
  count = local.kafka_create ? 1 : 0

  cluster_id = local.kafka_cluster
  location   = var.region
  labels     = local.labels

  capacity_config {
    vcpu_count   = var.kafka_vcpu_count
    memory_bytes = var.kafka_memory_gib * 1024 * 1024 * 1024
  }

  # Brokers and the bootstrap address get IPs and DNS names in our subnet: Debezium and the worker
  # reach them over the VPC only.
  gcp_config {
    access_config {
      network_configs {
        subnet = google_compute_subnetwork.main.id
      }
    }
  }

  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }

  depends_on = [google_project_service.managedkafka]
}

# Every topic Debezium writes (tables, heartbeat, signal table) must exist: Managed Kafka does not
# create topics on first write. Not compacted (cleanup.policy=delete): compaction could remove a
# delete before a lagging worker reads it and leave the row cached.
resource "google_managed_kafka_topic" "cdc" {
  for_each = local.kafka_create ? merge(local.debezium_topics, { "__dlq" = local.kafka_dlq_topic }) : {}

  topic_id           = each.value
  cluster            = google_managed_kafka_cluster.cdc[0].cluster_id
  location           = var.region
  partition_count    = each.key == "__heartbeat" || each.key == "__dlq" ? 1 : var.kafka_partitions
  replication_factor = 3
  configs = {
    "cleanup.policy"      = "delete"
    "retention.ms"        = tostring(var.kafka_retention_hours * 3600 * 1000)
    "min.insync.replicas" = "2" # with acks=all, a write survives the loss of one broker
  }
}

# Debezium produces with its VM's service account (SASL/OAUTHBEARER, IAM-checked by Managed Kafka).
resource "google_project_iam_member" "debezium_kafka" {
  count = local.kafka && var.kafka_auth == "google" ? 1 : 0

  project = var.project_id
  role    = "roles/managedkafka.client"
  member  = google_service_account.debezium.member
}

# The worker consumes (and parks on the DLQ topic) as its service account, the same way.
resource "google_project_iam_member" "worker_kafka" {
  count = local.kafka && var.kafka_auth == "google" ? 1 : 0

  project = var.project_id
  role    = "roles/managedkafka.client"
  member  = google_service_account.worker[0].member
}

# ---------------------------------------------------------------- consumer lag
# The worker logs one "kafka partition lag" entry per owned partition per summary interval:
# jsonPayload.message.{topic, partition, lag, finished, high_watermark}.
resource "google_logging_metric" "kafka_lag" {
  count = local.kafka ? 1 : 0

  name            = "cdc_kafka_consumer_lag"
  description     = "Records of a partition not yet applied (high watermark - next offset to commit), per worker summary"
  filter          = "${local.runtime_filter} AND ${local.summary}.message=\"kafka partition lag\""
  value_extractor = "EXTRACT(${local.summary}.lag)"
  label_extractors = {
    topic     = "EXTRACT(${local.summary}.topic)"
    partition = "EXTRACT(${local.summary}.partition)"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "cdc kafka consumer lag"

    labels {
      key         = "topic"
      value_type  = "STRING"
      description = "Kafka topic (<topic_prefix>.<db>.<table>)"
    }
    labels {
      key         = "partition"
      value_type  = "STRING"
      description = "partition number"
    }
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

locals {
  kafka_lag_metric = try(google_logging_metric.kafka_lag[0].name, "")

  # Per partition: the worker's cdc_kafka_partition_lag gauge (/metrics), or the mean of its
  # logged lag entries (logs only).
  kafka_lag_query = var.prometheus_metrics ? (
    "max by (topic, partition) (cdc_kafka_partition_lag{${local.prom}})"
    ) : (
    "max by (topic, partition) (rate(${local.promql_user}${local.kafka_lag_metric}_sum[10m]) / rate(${local.promql_user}${local.kafka_lag_metric}_count[10m]))"
  )

  kafka_dashboard_tiles = local.kafka ? [
    {
      title = "Kafka consumer lag per partition (records not yet applied)"
      sets  = [{ prometheusQuery = local.kafka_lag_query }]
    },
  ] : []
}

resource "google_monitoring_alert_policy" "kafka_lag" {
  count = local.kafka ? 1 : 0

  display_name          = "CDC Kafka consumer lag > ${var.alert_kafka_lag} records"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "lag per partition for 10 minutes"
    condition_prometheus_query_language {
      query    = "${local.kafka_lag_query} > ${var.alert_kafka_lag}"
      duration = "600s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Kafka workers fall behind on a partition. A growing lag on every partition: the workers are too few (worker_instances, at most kafka_partitions useful) or the cache is slow (worker logs, cache CPU). One partition only: a record there keeps failing (look for 'kafka batch: records to retry' in the logs of ${local.worker_name}). `cachectl status -kafka BROKERS` shows committed offsets and lag per partition."
  }
}
