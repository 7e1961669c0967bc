# Fleet percentiles: the runtime's /metrics scraped by a collector sidecar into Managed Service
# for Prometheus, the dashboard and the commit-lag alert on histogram_quantile over the summed
# buckets; or logs only (prometheus_metrics = false). Header blocks as in network.tftest.hcl.

mock_provider "google" {
  source          = "./tests/mocks/google"
  override_during = plan
}

mock_provider "random" {
  source          = "./tests/mocks/random"
  override_during = plan
}

variables {
  project_id             = "test-project"
  tables                 = ["inventory.customers", "inventory.orders"]
  function_image         = "europe-west1-docker.pkg.dev/test-project/cloudsql-cache/function:test"
  cloudsql_instance_name = "orders-db"
}

run "fleet_percentiles_push" {
  command = plan

  assert {
    condition = (length(google_cloud_run_v2_service.function[0].template[0].containers) == 2 &&
      google_cloud_run_v2_service.function[0].template[0].containers[1].name == "metrics-collector" &&
      google_cloud_run_v2_service.function[0].template[0].containers[1].image == "otel/opentelemetry-collector-contrib:0.115.0" &&
      google_cloud_run_v2_service.function[0].template[0].containers[1].args == tolist(["--config=env:CDC_COLLECTOR_CONFIG"]) &&
    length(google_cloud_run_v2_service.function[0].template[0].containers[1].ports) == 0)
    error_message = "The function runs the collector as a sidecar (no port: the function stays the ingress container)."
  }
  assert {
    condition = (strcontains(one([for e in google_cloud_run_v2_service.function[0].template[0].containers[1].env : e.value]), "targets: [\"127.0.0.1:8080\"]") &&
      strcontains(one([for e in google_cloud_run_v2_service.function[0].template[0].containers[1].env : e.value]), "set(attributes[\"namespace\"], \"cdc-function\")") &&
      strcontains(one([for e in google_cloud_run_v2_service.function[0].template[0].containers[1].env : e.value]), "googlemanagedprometheus") &&
    !strcontains(one([for e in google_cloud_run_v2_service.function[0].template[0].containers[1].env : e.value]), "$"))
    error_message = "The sidecar scrapes the function on loopback, labels its series with the service's name, writes to Managed Prometheus, and its config holds no '$' the collector would expand."
  }
  assert {
    condition     = google_monitoring_alert_policy.commit_lag.conditions[0].condition_prometheus_query_language[0].query == "histogram_quantile(0.99, sum by (le, table) (rate(cdc_commit_lag_seconds_bucket{namespace=\"cdc-function\"}[5m]))) * 1000 > 60000"
    error_message = "The commit-lag alert takes the p99 of every instance's buckets summed, not a percentile of percentiles."
  }
  assert {
    condition     = length(google_monitoring_alert_policy.commit_lag.conditions[0].condition_threshold) == 0
    error_message = "No log-based condition beside the PromQL one."
  }
  assert {
    condition = (strcontains(google_monitoring_dashboard.cdc.dashboard_json, "histogram_quantile(0.99, sum by (le, table) (rate(cdc_commit_lag_seconds_bucket{namespace=") &&
      strcontains(google_monitoring_dashboard.cdc.dashboard_json, "histogram_quantile(0.5, sum by (le, table) (rate(cdc_commit_lag_seconds_bucket{namespace=") &&
      strcontains(google_monitoring_dashboard.cdc.dashboard_json, "rate(cdc_apply_seconds_bucket{") &&
      strcontains(google_monitoring_dashboard.cdc.dashboard_json, "sum by (outcome) (rate(cdc_messages_total{") &&
    !strcontains(google_monitoring_dashboard.cdc.dashboard_json, "ALIGN_PERCENTILE_"))
    error_message = "The dashboard's lag, latency and outcome tiles are fleet-wide PromQL, with no max of per-instance percentiles."
  }
  assert {
    condition     = length(google_logging_metric.lag) == 5 && length(google_logging_metric.outcome) == 6
    error_message = "The summary-log metrics stay for logs-only users and the reject alert."
  }
}

run "fleet_percentiles_worker" {
  command = plan

  variables {
    delivery                = "pull"
    metrics_scrape_interval = "30s"
    metrics_sidecar_limits  = { cpu = "1", memory = "256Mi" }
  }

  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].template[0].containers[1].name == "metrics-collector" &&
      strcontains(one([for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[1].env : e.value]), "set(attributes[\"namespace\"], \"cdc-worker\")") &&
      strcontains(one([for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[1].env : e.value]), "scrape_interval: 30s") &&
    google_cloud_run_v2_worker_pool.worker[0].template[0].containers[1].resources[0].limits == tomap({ cpu = "1", memory = "256Mi" }))
    error_message = "The worker pool gets the same sidecar, labelled with the pool's name, scrape interval and limits as set."
  }
  assert {
    condition     = strcontains(google_monitoring_alert_policy.commit_lag.conditions[0].condition_prometheus_query_language[0].query, "cdc_commit_lag_seconds_bucket{namespace=\"cdc-worker\"}")
    error_message = "The alert selects the worker's series."
  }
}

run "logs_only" {
  command = plan

  variables {
    prometheus_metrics = false
  }

  assert {
    condition     = length(google_cloud_run_v2_service.function[0].template[0].containers) == 1
    error_message = "Logs only: no sidecar."
  }
  assert {
    condition = (length(google_monitoring_alert_policy.commit_lag.conditions[0].condition_prometheus_query_language) == 0 &&
      google_monitoring_alert_policy.commit_lag.conditions[0].condition_threshold[0].aggregations[0].per_series_aligner == "ALIGN_PERCENTILE_99" &&
    strcontains(google_monitoring_alert_policy.commit_lag.conditions[0].condition_threshold[0].filter, "logging.googleapis.com/user/cdc_commit_lag_ms_p99"))
    error_message = "Logs only: the alert falls back to the summary log's per-instance p99."
  }
  assert {
    condition     = !strcontains(google_monitoring_dashboard.cdc.dashboard_json, "_seconds_bucket") && strcontains(google_monitoring_dashboard.cdc.dashboard_json, "logging.googleapis.com/user/cdc_commit_lag_ms_p99")
    error_message = "Logs only: the dashboard reads the log-based metrics."
  }
}
