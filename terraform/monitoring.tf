# Monitoring of whichever runtime delivers (the function for push, the worker pool for pull and
# kafka): log-based metrics from the "cdc summary" entries (one JSON entry per table per interval
# per instance), the fleet's true percentiles from /metrics (Managed Service for Prometheus, via
# the collector sidecar in metrics.tf), a dashboard, alert policies, and a logging exclusion for
# cost.

locals {
  # The handler logs handler.Summary through cloud.google.com/go/logging's stdout JSON mode, which
  # nests the payload under "message": every field is jsonPayload.message.<field> (contract in
  # pipeline/metrics.go, type Summary).
  summary = "jsonPayload.message"

  # Cloud Run's monitored resource types (https://cloud.google.com/run/docs/monitoring,
  # "Resource types"): a service's revisions are cloud_run_revision, a worker pool is
  # cloud_run_worker_pool (labels worker_pool_name, revision_name, location).
  function_name = "${var.name_prefix}-function"
  worker_name   = "${var.name_prefix}-worker"
  runtime_name  = local.push ? local.function_name : local.worker_name
  runtime_type  = local.push ? "cloud_run_revision" : "cloud_run_worker_pool"
  runtime_filter = local.push ? (
    "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_name}\""
    ) : (
    "resource.type=\"cloud_run_worker_pool\" AND resource.labels.worker_pool_name=\"${local.worker_name}\""
  )

  summary_filter = "${local.runtime_filter} AND ${local.summary}.message=\"cdc summary\""

  # Per-interval percentiles each instance computed, in milliseconds (logs-only deployments:
  # prometheus_metrics = false).
  lag_fields = {
    commit_lag_ms_p50   = "MySQL commit -> applied in Redis, p50 per interval"
    commit_lag_ms_p99   = "MySQL commit -> applied in Redis, p99 per interval"
    pipeline_lag_ms_p99 = "Debezium processed -> applied in Redis, p99 per interval"
    queue_ms_p99        = "Pub/Sub publish -> handler, p99 per interval"
    apply_ms_p99        = "Redis apply time, p99 per interval"
  }

  # Per-interval counts by outcome.
  outcome_fields = {
    applied  = "Changes applied (rows written)"
    deleted  = "Deletes applied (tombstones written)"
    stale    = "Changes dropped as stale or duplicate"
    ignored  = "Heartbeats, schema changes, transaction markers"
    rejected = "Changes parked as permanent errors"
    failed   = "Changes answered 5xx (transient errors)"
  }

  # PromQL names of the log-based metrics: logging.googleapis.com/user/X -> logging_googleapis_com:user_X.
  promql_user = "logging_googleapis_com:user_"

  # PromQL selector of the runtime's own /metrics series (the sidecar sets namespace, metrics.tf).
  prom = "namespace=\"${local.runtime_name}\""

  # Fleet quantile of one /metrics histogram over 5 minutes, in seconds: buckets summed across
  # instances first, so it is the p of every change, not a percentile of percentiles.
  fleet_quantile = { for q in ["0.5", "0.99"] : q => {
    for h in ["commit_lag", "pipeline_lag", "queue", "apply"] :
    h => "histogram_quantile(${q}, sum by (le, table) (rate(cdc_${h}_seconds_bucket{${local.prom}}[5m])))"
  } }

  # The consuming subscriptions (push or pull; none with kafka).
  subscription_filter = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=starts_with(\"${local.subscription_prefix}\")"
}

resource "google_logging_metric" "lag" {
  for_each = local.lag_fields

  name            = "cdc_${each.key}"
  description     = each.value
  filter          = local.summary_filter
  value_extractor = "EXTRACT(${local.summary}.${each.key})"
  label_extractors = {
    table = "EXTRACT(${local.summary}.table)"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "cdc ${each.key}"

    labels {
      key         = "table"
      value_type  = "STRING"
      description = "db.table"
    }
  }

  # 1 ms .. ~3 h in 40 buckets growing by 1.5x.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "outcome" {
  for_each = local.outcome_fields

  name            = "cdc_${each.key}"
  description     = "${each.value} (count per summary entry)"
  filter          = local.summary_filter
  value_extractor = "EXTRACT(${local.summary}.${each.key})"
  label_extractors = {
    table = "EXTRACT(${local.summary}.table)"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "cdc ${each.key}"

    labels {
      key         = "table"
      value_type  = "STRING"
      description = "db.table"
    }
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

# Counts summary entries that report at least one reject: a plain counter is the simplest thing
# to alert on ("any reject in the last 5 minutes").
resource "google_logging_metric" "reject_intervals" {
  name        = "cdc_reject_intervals"
  description = "Summary entries with rejected > 0"
  filter      = "${local.summary_filter} AND ${local.summary}.rejected > 0"
  label_extractors = {
    table = "EXTRACT(${local.summary}.table)"
  }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "table"
      value_type  = "STRING"
      description = "db.table"
    }
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------- cost: Cloud Run request logs
# Cloud Run writes one request log entry per pushed message: at millions of changes an hour that
# costs more than the compute. The handler's summaries, rejects and errors (stdout/stderr) stay.
# A worker pool serves no requests, so it writes none.
resource "google_logging_project_exclusion" "run_requests" {
  count = local.push ? 1 : 0

  name        = "${var.name_prefix}-function-request-logs"
  description = "Drop per-request logs of the CDC handler (one per Pub/Sub push)."
  filter      = "${local.runtime_filter} AND log_id(\"run.googleapis.com/requests\")"
}

# ---------------------------------------------------------------- dashboard
locals {
  # A tile: a title and its lines, each line a Monitoring TimeSeriesQuery (filter or PromQL).
  # Each group below is present only where its parts exist.
  subscription_tiles = local.kafka ? [] : [
    {
      title = "Events pending (undelivered messages) by subscription"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Oldest unacked message age (s)"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Dead-lettered messages"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
  ]

  push_tiles = local.push ? [
    {
      title = "Push requests/s by response class"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/push_request_count\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_class"] } }
      }]
    },
    {
      title = "Push request latency p50 / p99 (ms)"
      sets = [for p in ["50", "99"] : {
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/push_request_latencies\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}", groupByFields = [] } }
      }]
    },
    {
      title = "Cloud Run instances"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.runtime_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] } }
      }]
    },
  ] : []

  # The worker: what it takes off its subscriptions, and how busy its instances are (a worker
  # pool has no instance-count metric; CPU says when worker_instances should grow).
  worker_tiles = local.worker ? concat(local.pull ? [
    {
      title = "Messages acknowledged/s by subscription (pull)"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/ack_message_count\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Ack deadlines expired/s (messages held past the deadline: redelivered)"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/expired_ack_deadlines_count\" AND ${local.subscription_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    ] : [], [
    {
      title = "Worker CPU utilization p50 / p99 across instances"
      sets = [for p in ["50", "99"] : {
        timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/cpu/utilizations\" AND ${local.runtime_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}", groupByFields = [] } }
      }]
    },
  ]) : []

  # Lag, latency and outcomes: the fleet's own distributions from /metrics, or (logs only) the
  # per-instance summaries, whose percentiles can only be maxed across instances.
  runtime_tiles = local.runtime_tile_sets[var.prometheus_metrics ? "prometheus" : "logs"]
  # An object, not a conditional: the two tile lists differ in shape, which ?: does not allow.
  runtime_tile_sets = {
    prometheus = [
      {
        title = "Commit lag p50 / p99 by table, all instances (s)"
        sets  = [for q in ["0.5", "0.99"] : { prometheusQuery = local.fleet_quantile[q]["commit_lag"] }]
      },
      {
        title = "Pipeline lag, queue time and apply time p99, all instances (s)"
        sets  = [for h in ["pipeline_lag", "queue", "apply"] : { prometheusQuery = local.fleet_quantile["0.99"][h] }]
      },
      {
        title = "Outcomes/s (applied, deleted, stale, ignored)"
        sets  = [{ prometheusQuery = "sum by (outcome) (rate(cdc_messages_total{${local.prom},outcome=~\"applied|deleted|stale|ignored\"}[5m]))" }]
      },
      {
        title = "Rejected, failed and untyped changes/s by table"
        sets  = [{ prometheusQuery = "sum by (table, outcome) (rate(cdc_messages_total{${local.prom},outcome=~\"rejected|failed|untyped\"}[5m]))" }]
      },
    ]
    logs = [
      {
        title = "Commit lag p50 / p99 by table (ms, max over instances of each one's percentile)"
        sets = [for k in ["commit_lag_ms_p50", "commit_lag_ms_p99"] : {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag[k].name}\" AND resource.type=\"${local.runtime_type}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = k == "commit_lag_ms_p50" ? "ALIGN_PERCENTILE_50" : "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["metric.label.table"] } }
        }]
      },
      {
        title = "Pipeline lag, queue time and apply time p99 (ms, max over instances)"
        sets = [for k in ["queue_ms_p99", "pipeline_lag_ms_p99", "apply_ms_p99"] : {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag[k].name}\" AND resource.type=\"${local.runtime_type}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
        }]
      },
      {
        title = "Outcomes/s (applied, deleted, stale, ignored)"
        sets = [for k in ["applied", "deleted", "stale", "ignored"] : {
          prometheusQuery = "sum(rate(${local.promql_user}${google_logging_metric.outcome[k].name}_sum[5m]))"
        }]
      },
      {
        title = "Rejected and failed changes/s by table"
        sets = [for k in ["rejected", "failed"] : {
          prometheusQuery = "sum by (table) (rate(${local.promql_user}${google_logging_metric.outcome[k].name}_sum[5m]))"
        }]
      },
    ]
  }

  source_tiles = [
    {
      title = "Debezium MilliSecondsBehindSource and queue remaining capacity"
      sets = [
        { prometheusQuery = "max(debezium_metrics_MilliSecondsBehindSource{context=\"streaming\"})" },
        { prometheusQuery = "min(debezium_metrics_QueueRemainingCapacity{context=\"streaming\"})" },
      ]
    },
  ]

  dashboard_tiles = concat(local.subscription_tiles, local.push_tiles, local.worker_tiles, local.runtime_tiles, local.cache_tiles, local.source_tiles, local.kafka_dashboard_tiles)
}

resource "google_monitoring_dashboard" "cdc" {
  dashboard_json = jsonencode({
    displayName = "cloudsql-cache CDC (${var.name_prefix})"
    mosaicLayout = {
      columns = 48
      tiles = [for i, t in local.dashboard_tiles : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = {
          title = t.title
          xyChart = {
            dataSets = [for q in t.sets : {
              plotType        = "LINE"
              timeSeriesQuery = q
            }]
          }
        }
      }]
    }
  })

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------- alerts
resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == "" ? 0 : 1

  display_name = "cloudsql-cache on-call"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

locals {
  notification_channels = google_monitoring_notification_channel.email[*].id
}

resource "google_monitoring_alert_policy" "backlog_age" {
  count = local.kafka ? 0 : 1

  display_name          = "CDC backlog: oldest unacked message > ${var.alert_backlog_age_seconds}s"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "oldest_unacked_message_age per ${var.delivery} subscription"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscription_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_backlog_age_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content = local.push ? (
      "Changes are not reaching the cache. Check the push response classes on the dashboard: 5xx = handler/cache trouble (logs of ${local.function_name}); 4xx = auth/ingress; no requests = Cloud Run scaling. See docs/deploy.md, 'When an alert fires'."
      ) : (
      "Changes are not reaching the cache. Check the worker pool ${local.worker_name}: its logs (severity>=WARNING), its CPU on the dashboard (all busy: raise worker_instances), and whether the cache answers (/healthz fails while it does not). See docs/deploy.md, 'When an alert fires'."
    )
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  count = local.kafka ? 0 : 1

  display_name          = "CDC dead-lettered messages"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "dead_letter_message_count > 0"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.subscription_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.subscription_id"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages exhausted ${var.max_delivery_attempts} deliveries and are held in subscription ${google_pubsub_subscription.dead_letter.name}. The affected rows may be stale until replayed (cachectl) or changed again."
  }
}

resource "google_monitoring_alert_policy" "rejects" {
  display_name          = "CDC rejected (parked) changes"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "summary entries with rejected > 0"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.reject_intervals.name}\" AND resource.type=\"${local.runtime_type}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.table"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The ${local.push ? "handler" : "worker"} parked changes it cannot apply (no key, undecodable, unknown shape) on ${local.kafka_create ? "Kafka topic ${local.kafka_dlq_topic}" : "${google_pubsub_topic.reject.name} (held in ${google_pubsub_subscription.reject.name})"}. Inspect them, fix config (e.g. key columns), replay with cachectl."
  }
}

# The fleet's p99 from the summed /metrics buckets; logs only: the highest per-instance p99.
resource "google_monitoring_alert_policy" "commit_lag" {
  display_name          = "CDC commit lag p99 > ${var.alert_commit_lag_ms} ms"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = var.prometheus_metrics ? "p99 of cdc_commit_lag_seconds across instances, by table" : "highest per-instance commit_lag_ms_p99"

    dynamic "condition_prometheus_query_language" {
      for_each = var.prometheus_metrics ? [1] : []
      content {
        query    = "${local.fleet_quantile["0.99"]["commit_lag"]} * 1000 > ${var.alert_commit_lag_ms}"
        duration = "600s"
      }
    }

    dynamic "condition_threshold" {
      for_each = var.prometheus_metrics ? [] : [1]
      content {
        filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["commit_lag_ms_p99"].name}\" AND resource.type=\"${local.runtime_type}\""
        comparison      = "COMPARISON_GT"
        threshold_value = var.alert_commit_lag_ms
        duration        = "600s"
        aggregations {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_PERCENTILE_99"
          cross_series_reducer = "REDUCE_MAX"
          group_by_fields      = ["metric.label.table"]
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cached rows trail MySQL by more than the threshold. Compare Debezium MilliSecondsBehindSource (source side) with the ${local.kafka ? "Kafka consumer lag" : "Pub/Sub backlog"} (delivery side) on the dashboard."
  }
}

# Debezium publishes heartbeats every few seconds even when no table changes: on Pub/Sub,
# silence on the heartbeat topic means Debezium (or its link to MySQL or Pub/Sub) is down. With
# Kafka there is no Pub/Sub topic to watch: the VM's own metrics say it, absent (VM or Debezium
# down) or disconnected from MySQL.
resource "google_monitoring_alert_policy" "debezium_silent" {
  display_name          = local.kafka ? "Debezium down: not connected to MySQL, or no metrics, for 10 minutes" : "Debezium silent: no heartbeat published for 10 minutes"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = local.kafka ? "debezium_metrics_Connected absent or 0" : "no publish requests on ${local.heartbeat_topic}"

    dynamic "condition_absent" {
      for_each = local.kafka ? [] : [1]
      content {
        filter   = "metric.type=\"pubsub.googleapis.com/topic/send_request_count\" AND resource.type=\"pubsub_topic\" AND resource.label.topic_id=\"${local.heartbeat_topic}\""
        duration = "600s"
        aggregations {
          alignment_period   = "300s"
          per_series_aligner = "ALIGN_DELTA"
        }
      }
    }

    dynamic "condition_prometheus_query_language" {
      for_each = local.kafka ? [1] : []
      content {
        query    = "absent_over_time(debezium_metrics_Connected{context=\"streaming\"}[10m]) or max(max_over_time(debezium_metrics_Connected{context=\"streaming\"}[10m])) < 1"
        duration = "0s"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Check the VM ${google_compute_instance.debezium.name}: `journalctl -u debezium -u cloudsql-proxy` (IAP SSH) or its container logs in Cloud Logging. A purged binlog position needs the recovery in debezium-server/README.md."
  }
}
