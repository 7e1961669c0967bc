# cache = "memcached": the same versioned records on memcached (compare-and-swap, contract in
# docs/contracts.md), either your own nodes (memcache_addrs) or a Memorystore for Memcached
# instance in the VPC. Memorystore for Memcached is being retired (no new instances in new
# projects after 2027-02-01, shut down 2029-01-31; docs/deploy.md, "memcached"): self-managed
# memcached with -M is the path that stays.
#
# Evictions are off (-M, Memorystore's disable-evictions): an evicted tombstone would let a late
# redelivery resurrect a deleted row, an evicted row's version an older one overwrite it. A full
# memcached refuses writes instead, which the function answers 503 and the worker retries.

locals {
  memcache_create = local.memcached && length(var.memcache_addrs) == 0

  # MEMCACHE_ADDRS: the nodes, host:port each (known after the instance exists).
  memcache_addrs = local.memcache_create ? [for n in google_memcache_instance.cache[0].memcache_nodes : "${n.host}:${n.port}"] : var.memcache_addrs

  memcache_tiles = local.memcache_create ? [
    {
      title = "memcached memory (used and free) and items"
      sets = [
        { timeSeriesFilter = { filter = "metric.type=\"memcache.googleapis.com/node/cache_memory\" AND resource.type=\"memcache_node\" AND resource.label.instance_id=ends_with(\"${local.memcache_name}\")", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.used"] } } },
        { timeSeriesFilter = { filter = "metric.type=\"memcache.googleapis.com/node/items\" AND resource.type=\"memcache_node\" AND resource.label.instance_id=ends_with(\"${local.memcache_name}\")", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] } } },
      ]
    },
    {
      title = "memcached CPU utilization by node"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"memcache.googleapis.com/node/cpu/utilization\" AND resource.type=\"memcache_node\" AND resource.label.instance_id=ends_with(\"${local.memcache_name}\")", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.node_id"] } }
      }]
    },
  ] : []

  memcache_name = "${var.name_prefix}-memcache"
}

resource "google_project_service" "memcache" {
  count = local.memcache_create ? 1 : 0

  project            = var.project_id
  service            = "memcache.googleapis.com"
  disable_on_destroy = false
}

resource "google_memcache_instance" "cache" {
  count = local.memcache_create ? 1 : 0

  name                = local.memcache_name
  region              = var.region
  authorized_network  = local.network_id
  memcache_version    = "MEMCACHE_1_6_15" # the meta protocol (mg/ms) needs 1.6
  node_count          = var.memcache_node_count
  labels              = local.labels
  deletion_protection = var.deletion_protection

  node_config {
    cpu_count      = var.memcache_node_cpu
    memory_size_mb = var.memcache_node_memory_mb
  }

  memcache_parameters {
    params = {
      "disable-evictions" = "true" # -M
    }
  }

  # Memorystore for Memcached is reached through private services access (VPC peering), like
  # Cloud SQL's private IP (sql.tf).
  depends_on = [google_project_service.memcache, google_service_networking_connection.psa]
}

# With evictions off nothing should ever be evicted: any eviction means the parameter is gone.
resource "google_monitoring_alert_policy" "memcache_evictions" {
  count = local.memcache_create ? 1 : 0

  display_name          = "memcached evicted items (disable-evictions must be on)"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "eviction_count > 0"
    condition_threshold {
      filter          = "metric.type=\"memcache.googleapis.com/node/eviction_count\" AND resource.type=\"memcache_node\" AND resource.label.instance_id=ends_with(\"${local.memcache_name}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "memcached evicted items: a tombstone or version may be gone, so a late redelivery can resurrect or age a row. Restore disable-evictions on ${local.memcache_name}, grow memcache_node_memory_mb or memcache_node_count, then run cachectl verify and re-snapshot what it reports."
  }
}

# The function and the worker need a reject topic with memcached (no stream to park in), and
# compact messages need their keys and types from the config (the registry lives in Redis).
resource "terraform_data" "memcached_requirements" {
  count = local.memcached ? 1 : 0

  lifecycle {
    precondition {
      condition     = var.message_format == "full" || var.cache_config_yaml != ""
      error_message = "cache = memcached with message_format = compact needs cache_config_yaml with key: and types: for every table: the column registry that supplies them lives in Redis."
    }
  }
}
