# Fleet-wide distributions: the function and the worker serve their histograms and counters as
# Prometheus text on :8080/metrics. A collector sidecar in each instance (OpenTelemetry Collector
# contrib, var.otel_collector_image, as on the Debezium VM) scrapes that endpoint and writes to
# Google Cloud Managed Service for Prometheus, so PromQL can sum the buckets of every instance
# before taking a quantile (monitoring.tf, local.fleet_quantile).

locals {
  # The sidecar's whole configuration travels in one environment variable (--config=env:...):
  # no secret or volume to manage, and a change is a new revision.
  metrics_collector_config = templatefile("${path.module}/metrics-collector.yaml.tftpl", {
    job       = local.runtime_name
    namespace = local.runtime_name
    location  = var.region
    interval  = var.metrics_scrape_interval
  })

  # The container spec both runtimes add when prometheus_metrics is on.
  metrics_sidecar = var.prometheus_metrics ? [{
    name   = "metrics-collector"
    image  = var.otel_collector_image
    args   = ["--config=env:CDC_COLLECTOR_CONFIG"]
    config = local.metrics_collector_config
  }] : []
}
