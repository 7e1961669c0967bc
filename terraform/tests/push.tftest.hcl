# Pub/Sub push branches: the wrapped JSON envelope (default) or unwrapped delivery (raw body,
# metadata as x-goog-pubsub-* headers), plus what every push deployment needs: one subscription
# per table and the heartbeat, pushing with OIDC to the function, dead letters, and the optional
# CACHE_CONFIG secret. Header blocks as in network.tftest.hcl.

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

run "push_wrapped" {
  command = plan

  variables {
    push_unwrapped = false
  }

  assert {
    condition     = toset(keys(google_pubsub_subscription.push)) == toset(["inventory.customers", "inventory.orders", "__heartbeat"])
    error_message = "One push subscription per table and one for the heartbeat."
  }
  assert {
    condition     = google_pubsub_subscription.push["inventory.customers"].name == "cdc-push.cdc.inventory.customers"
    error_message = "Push subscriptions are named <name_prefix>-push.<topic>; the dashboard selects on that prefix."
  }
  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : length(s.push_config[0].no_wrapper) == 0])
    error_message = "Wrapped delivery must not set no_wrapper."
  }
  assert {
    condition = alltrue([for s in google_pubsub_subscription.push :
      s.push_config[0].push_endpoint == "https://cdc-function-abc123-ew.a.run.app" &&
      s.push_config[0].oidc_token[0].audience == "https://cdc-function-abc123-ew.a.run.app"
    ])
    error_message = "Every subscription pushes to the function's URL with an OIDC token for it."
  }
  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : s.dead_letter_policy[0].max_delivery_attempts == 20 && s.ack_deadline_seconds == 60])
    error_message = "Dead lettering after max_delivery_attempts; ack deadline = request timeout."
  }
  assert {
    condition     = google_cloud_run_v2_service.function[0].template[0].timeout == "60s"
    error_message = "The Cloud Run request timeout equals the ack deadline."
  }
  assert {
    condition     = google_secret_manager_secret_version.redis_url[0].secret_data == "rediss://:mock-auth-string@10.20.0.3:6378/0"
    error_message = "REDIS_URL is TLS with the instance's AUTH string, host and port."
  }
  assert {
    condition     = google_secret_manager_secret_version.redis_ca[0].secret_data == "-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----"
    error_message = "The CA secret holds the instance's server CA certificates."
  }
  assert {
    condition     = length(google_secret_manager_secret.cache_config) == 0 && !contains([for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name], "CACHE_CONFIG")
    error_message = "No cache_config_yaml: no config secret and no CACHE_CONFIG."
  }
  assert {
    condition     = length(google_monitoring_notification_channel.email) == 0
    error_message = "No alert_email: no notification channel."
  }
}

run "push_unwrapped_with_config" {
  command = plan

  variables {
    push_unwrapped    = true
    cache_config_yaml = "tables:\n  inventory.customers:\n    ttl: 24h\n"
    cache_prefix      = "prod:"
    alert_email       = "oncall@example.com"
  }

  assert {
    condition     = alltrue([for s in google_pubsub_subscription.push : length(s.push_config[0].no_wrapper) == 1 && s.push_config[0].no_wrapper[0].write_metadata])
    error_message = "Unwrapped delivery must set no_wrapper with write_metadata (the handler reads x-goog-pubsub-* headers)."
  }
  assert {
    condition     = length(google_secret_manager_secret_version.cache_config) == 1 && google_secret_manager_secret_version.cache_config[0].secret_data == "tables:\n  inventory.customers:\n    ttl: 24h\n"
    error_message = "cache_config_yaml is stored as a secret."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["CACHE_CONFIG"] == "/config/cache.yaml" &&
      { for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["CACHE_PREFIX"] == "prod:"
    )
    error_message = "CACHE_CONFIG points at the mounted file and CACHE_PREFIX is set."
  }
  assert {
    condition     = contains([for m in google_cloud_run_v2_service.function[0].template[0].containers[0].volume_mounts : m.mount_path], "/config")
    error_message = "The config secret is mounted where CACHE_CONFIG points."
  }
  assert {
    condition     = length(google_monitoring_notification_channel.email) == 1 && alltrue([for p in [google_monitoring_alert_policy.backlog_age[0], google_monitoring_alert_policy.dead_letters[0], google_monitoring_alert_policy.rejects, google_monitoring_alert_policy.commit_lag, google_monitoring_alert_policy.debezium_silent, google_monitoring_alert_policy.redis_memory[0]] : tolist(p.notification_channels) == tolist(["projects/test-project/notificationChannels/1234"])])
    error_message = "alert_email creates a channel every alert notifies."
  }
}
