# Log-based metrics from the handler's "cdc summary" entries (one JSON entry per table per
# interval per instance), a dashboard, alert policies, and a logging exclusion for cost.

locals {
  # The handler logs handler.Summary through cloud.google.com/go/logging's stdout JSON mode, which
  # nests the payload under "message": every field is jsonPayload.message.<field> (contract in
  # handler/metrics.go, type Summary).
  summary = "jsonPayload.message"

  summary_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${google_cloud_run_v2_service.function.name}\"",
    "${local.summary}.message=\"cdc summary\"",
  ])

  # Per-interval percentiles the handler already computed, in milliseconds.
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

  push_filter = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=starts_with(\"${local.push_subscription_prefix}\")"
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
resource "google_logging_project_exclusion" "run_requests" {
  name        = "${var.name_prefix}-function-request-logs"
  description = "Drop per-request logs of the CDC handler (one per Pub/Sub push)."
  filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${google_cloud_run_v2_service.function.name}\"",
    "log_id(\"run.googleapis.com/requests\")",
  ])
}

# ---------------------------------------------------------------- dashboard
locals {
  # Each tile: a title and its lines, each line a Monitoring TimeSeriesQuery (filter or PromQL).
  dashboard_tiles = [
    {
      title = "Events pending (undelivered messages) by subscription"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Oldest unacked message age (s)"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Push requests/s by response class"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/push_request_count\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_class"] } }
      }]
    },
    {
      title = "Push request latency p50 / p99 (ms)"
      sets = [
        {
          timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/push_request_latencies\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_50", groupByFields = [] } }
        },
        {
          timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/push_request_latencies\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99", groupByFields = [] } }
        },
      ]
    },
    {
      title = "Dead-lettered messages"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.push_filter}", aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] } }
      }]
    },
    {
      title = "Handler commit lag p50 / p99 by table (ms)"
      sets = [
        {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["commit_lag_ms_p50"].name}\" AND resource.type=\"cloud_run_revision\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_50", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["metric.label.table"] } }
        },
        {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["commit_lag_ms_p99"].name}\" AND resource.type=\"cloud_run_revision\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["metric.label.table"] } }
        },
      ]
    },
    {
      title = "Pipeline lag, queue time and apply time p99 (ms)"
      sets = [
        {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["queue_ms_p99"].name}\" AND resource.type=\"cloud_run_revision\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
        },
        {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["pipeline_lag_ms_p99"].name}\" AND resource.type=\"cloud_run_revision\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
        },
        {
          timeSeriesFilter = { filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["apply_ms_p99"].name}\" AND resource.type=\"cloud_run_revision\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_99", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
        },
      ]
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
    {
      title = "Redis memory usage ratio"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"redis.googleapis.com/stats/memory/usage_ratio\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache.id}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
      }]
    },
    {
      title = "Redis connected clients"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"redis.googleapis.com/clients/connected\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache.id}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] } }
      }]
    },
    {
      title = "Debezium MilliSecondsBehindSource and queue remaining capacity"
      sets = [
        { prometheusQuery = "max(debezium_metrics_MilliSecondsBehindSource{context=\"streaming\"})" },
        { prometheusQuery = "min(debezium_metrics_QueueRemainingCapacity{context=\"streaming\"})" },
      ]
    },
    {
      title = "Cloud Run instances"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"run.googleapis.com/container/instance_count\" AND resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${google_cloud_run_v2_service.function.name}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] } }
      }]
    },
  ]
}

resource "google_monitoring_dashboard" "cdc" {
  dashboard_json = jsonencode({
    displayName = "cloudsql-cache CDC (${var.name_prefix})"
    mosaicLayout = {
      columns = 48
      tiles = [for i, t in concat(local.dashboard_tiles, local.kafka_dashboard_tiles) : {
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
  display_name          = "CDC backlog: oldest unacked message > ${var.alert_backlog_age_seconds}s"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "oldest_unacked_message_age per push subscription"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.push_filter}"
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
    content   = "Changes are not reaching Redis. Check the push response classes on the dashboard: 5xx = handler/Redis trouble (logs of ${google_cloud_run_v2_service.function.name}); 4xx = auth/ingress; no requests = Cloud Run scaling. See docs/deploy.md, 'When an alert fires'."
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "CDC dead-lettered messages"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "dead_letter_message_count > 0"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.push_filter}"
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
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.reject_intervals.name}\" AND resource.type=\"cloud_run_revision\""
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
    content   = "The handler parked changes it cannot apply (no key, undecodable, unknown shape) on ${google_pubsub_topic.reject.name}. Inspect ${google_pubsub_subscription.reject.name}, fix config (e.g. key columns), replay with cachectl."
  }
}

resource "google_monitoring_alert_policy" "commit_lag" {
  display_name          = "CDC commit lag p99 > ${var.alert_commit_lag_ms} ms"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "handler commit_lag_ms_p99"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.lag["commit_lag_ms_p99"].name}\" AND resource.type=\"cloud_run_revision\""
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

  documentation {
    mime_type = "text/markdown"
    content   = "Cached rows trail MySQL by more than the threshold. Compare Debezium MilliSecondsBehindSource (source side) with the Pub/Sub backlog (delivery side) on the dashboard."
  }
}

# Heartbeats are published every few seconds even when no table changes: silence means Debezium
# (or its link to MySQL or Pub/Sub) is down. Independent of the VM's metrics pipeline.
resource "google_monitoring_alert_policy" "debezium_silent" {
  display_name          = "Debezium silent: no heartbeat published for 10 minutes"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "no publish requests on ${local.heartbeat_topic}"
    condition_absent {
      filter   = "metric.type=\"pubsub.googleapis.com/topic/send_request_count\" AND resource.type=\"pubsub_topic\" AND resource.label.topic_id=\"${local.heartbeat_topic}\""
      duration = "600s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_DELTA"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Check the VM ${google_compute_instance.debezium.name}: `journalctl -u debezium -u cloudsql-proxy` (IAP SSH) or its container logs in Cloud Logging. A purged binlog position needs the recovery in debezium-server/README.md."
  }
}

resource "google_monitoring_alert_policy" "redis_memory" {
  display_name          = "Redis memory > ${var.alert_redis_memory_ratio * 100}% (noeviction: writes fail when full)"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "redis memory usage_ratio"
    condition_threshold {
      filter          = "metric.type=\"redis.googleapis.com/stats/memory/usage_ratio\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache.id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_redis_memory_ratio
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Grow redis_memory_size_gb (in-place resize) or shorten row TTLs / tombstone_ttl before the cache fills and writes are refused."
  }
}
