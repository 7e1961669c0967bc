# Memorystore for Redis with AUTH and TLS (SERVER_AUTHENTICATION: clients verify the server with
# the instance CA, port 6378). The function gets REDIS_URL and the CA from Secret Manager.
#
# Eviction: noeviction. Every record carries the version that protects it against late or
# duplicated deliveries. Evicting a tombstone lets a late redelivery of an older insert/update
# resurrect a deleted row; evicting a row (or marker) also drops its version, so an older
# redelivery can overwrite it with stale data. Only expiry by TTL is safe (tombstone_ttl >=
# Pub/Sub retention). With noeviction a full cache fails writes loudly: the handler answers 503,
# Pub/Sub retries with backoff, the backlog and Redis-memory alerts fire, and reads keep working.
# volatile-* would only evict keys with a TTL - precisely the tombstones - so it is the worst
# choice here despite looking cache-friendly.

locals {
  redis     = var.cache == "redis"
  memcached = var.cache == "memcached"
}

resource "google_redis_instance" "cache" {
  count = local.redis ? 1 : 0

  name           = "${var.name_prefix}-cache"
  region         = var.region
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  redis_version  = var.redis_version
  labels         = local.labels

  authorized_network = local.network_id
  connect_mode       = "DIRECT_PEERING"

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  redis_configs = {
    "maxmemory-policy" = var.redis_maxmemory_policy
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------- monitoring
locals {
  cache_tiles = local.redis ? [
    {
      title = "Redis memory usage ratio"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"redis.googleapis.com/stats/memory/usage_ratio\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache[0].id}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = [] } }
      }]
    },
    {
      title = "Redis connected clients"
      sets = [{
        timeSeriesFilter = { filter = "metric.type=\"redis.googleapis.com/clients/connected\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache[0].id}\"", aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM", groupByFields = [] } }
      }]
    },
  ] : local.memcache_tiles
}

resource "google_monitoring_alert_policy" "redis_memory" {
  count = local.redis ? 1 : 0

  display_name          = "Redis memory > ${var.alert_redis_memory_ratio * 100}% (noeviction: writes fail when full)"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "redis memory usage_ratio"
    condition_threshold {
      filter          = "metric.type=\"redis.googleapis.com/stats/memory/usage_ratio\" AND resource.type=\"redis_instance\" AND resource.label.instance_id=\"${google_redis_instance.cache[0].id}\""
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
