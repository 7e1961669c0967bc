# delivery = "pull": pull subscriptions with the push ones' policies, and the worker on a Cloud
# Run worker pool with its own service account, subscriber on its subscriptions only. Nothing of
# push: no push subscription, no function, no invoker. Header blocks as in network.tftest.hcl.

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

run "pull" {
  command = plan

  variables {
    delivery         = "pull"
    worker_instances = 3
  }

  assert {
    condition = (length(google_pubsub_subscription.push) == 0 && length(google_cloud_run_v2_service.function) == 0 &&
      length(google_cloud_run_v2_service_iam_member.push_invoker) == 0 && length(google_service_account.push) == 0 &&
    length(google_service_account.function) == 0 && length(google_logging_project_exclusion.run_requests) == 0)
    error_message = "Pull creates no push subscription, no function, no push identity or invoker."
  }
  assert {
    condition     = toset(keys(google_pubsub_subscription.pull)) == toset(["inventory.customers", "inventory.orders", "__heartbeat"])
    error_message = "One pull subscription per table and one for the heartbeat."
  }
  assert {
    condition     = google_pubsub_subscription.pull["inventory.orders"].name == "cdc-pull.cdc.inventory.orders"
    error_message = "Pull subscriptions are named <name_prefix>-pull.<topic>; the dashboard and alerts select on that prefix."
  }
  assert {
    condition = alltrue([for s in google_pubsub_subscription.pull :
      length(s.push_config) == 0 && s.ack_deadline_seconds == 60 &&
      s.dead_letter_policy[0].max_delivery_attempts == 20 && s.dead_letter_policy[0].dead_letter_topic == "projects/test-project/topics/mock-topic" &&
      s.retry_policy[0].minimum_backoff == "5s" && s.retry_policy[0].maximum_backoff == "300s" &&
      s.expiration_policy[0].ttl == ""
    ])
    error_message = "Pull subscriptions have the push ones' dead-letter, retry and expiry policies, and no push config."
  }
  assert {
    condition     = toset(keys(google_pubsub_subscription_iam_member.dead_letter_subscriber)) == toset(keys(google_pubsub_subscription.pull))
    error_message = "Pub/Sub's service agent may forward dead letters from every pull subscription."
  }

  # Least privilege: subscriber on its own subscriptions, nothing on topics or the project.
  assert {
    condition = (toset(keys(google_pubsub_subscription_iam_member.worker_subscriber)) == toset(keys(google_pubsub_subscription.pull)) &&
      alltrue([for k, b in google_pubsub_subscription_iam_member.worker_subscriber :
        b.role == "roles/pubsub.subscriber" && b.subscription == google_pubsub_subscription.pull[k].id && b.member == google_service_account.worker[0].member
    ]))
    error_message = "The worker is subscriber on each of its pull subscriptions."
  }
  assert {
    condition     = toset([for b in google_project_iam_member.runtime : b.role]) == toset(["roles/logging.logWriter", "roles/monitoring.metricWriter"])
    error_message = "The worker's only project roles are log and metric writing."
  }
  assert {
    condition = (google_pubsub_topic_iam_member.runtime_reject_publisher.role == "roles/pubsub.publisher" &&
      google_pubsub_topic_iam_member.runtime_reject_publisher.topic == "projects/test-project/topics/mock-topic" &&
    toset(keys(google_secret_manager_secret_iam_member.runtime)) == toset(["redis_url", "redis_ca"]))
    error_message = "The worker publishes rejects and reads the Redis URL and CA, nothing more."
  }
  assert {
    condition     = google_service_account.worker[0].account_id == "cdc-worker" && google_cloud_run_v2_worker_pool.worker[0].template[0].service_account == google_service_account.worker[0].email
    error_message = "The worker pool runs as its own service account."
  }

  # The worker pool.
  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].name == "cdc-worker" &&
      google_cloud_run_v2_worker_pool.worker[0].scaling[0].scaling_mode == "MANUAL" &&
    google_cloud_run_v2_worker_pool.worker[0].scaling[0].manual_instance_count == 3)
    error_message = "worker_instances instances, manually scaled."
  }
  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].template[0].vpc_access[0].egress == "PRIVATE_RANGES_ONLY" &&
    google_cloud_run_v2_worker_pool.worker[0].template[0].vpc_access[0].network_interfaces[0].subnetwork == "projects/test-project/regions/europe-west1/subnetworks/cdc-subnet")
    error_message = "Direct VPC egress into our subnet, private ranges only (Memorystore)."
  }
  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].image == "europe-west1-docker.pkg.dev/test-project/cloudsql-cache/function:test" &&
    google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].command == tolist(["/worker"]))
    error_message = "Without worker_image the pool runs /worker from the function's image."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["DELIVERY"] == "pull" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["CACHE_SERVER_NAME"] == "cdc" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["PULL_MAX_OUTSTANDING"] == "5000" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["REJECT_TOPIC"] == "projects/test-project/topics/mock-topic" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["REDIS_CA_CERT"] == "/secrets/redis-ca/ca.pem"
    )
    error_message = "The worker gets DELIVERY=pull, CACHE_SERVER_NAME = topic_prefix (as the function does), flow control, the reject topic and the Redis CA."
  }
  assert {
    condition = alltrue([for s in split(",", { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["PUBSUB_SUBSCRIPTIONS"]) :
    startswith(s, "projects/test-project/subscriptions/")]) && length(split(",", { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["PUBSUB_SUBSCRIPTIONS"])) == 3
    error_message = "PUBSUB_SUBSCRIPTIONS lists the three pull subscriptions by full name."
  }
  assert {
    condition = [for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env :
    e.value_source[0].secret_key_ref[0].version if e.name == "REDIS_URL"] == ["latest"]
    error_message = "REDIS_URL comes from Secret Manager."
  }
  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].startup_probe[0].http_get[0].path == "/healthz" &&
    google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].liveness_probe[0].http_get[0].port == 8080)
    error_message = "Start-up and liveness follow /healthz on 8080."
  }

  # Monitoring follows the worker pool.
  assert {
    condition     = strcontains(google_logging_metric.lag["commit_lag_ms_p99"].filter, "resource.type=\"cloud_run_worker_pool\" AND resource.labels.worker_pool_name=\"cdc-worker\"")
    error_message = "Log-based metrics read the worker pool's summaries (monitored resource cloud_run_worker_pool)."
  }
  assert {
    condition = (strcontains(google_monitoring_alert_policy.backlog_age[0].conditions[0].condition_threshold[0].filter, "starts_with(\"cdc-pull.\")") &&
    strcontains(google_monitoring_alert_policy.dead_letters[0].conditions[0].condition_threshold[0].filter, "starts_with(\"cdc-pull.\")"))
    error_message = "Backlog and dead-letter alerts watch the pull subscriptions."
  }
  assert {
    condition = (strcontains(google_monitoring_dashboard.cdc.dashboard_json, "subscription/ack_message_count") &&
      strcontains(google_monitoring_dashboard.cdc.dashboard_json, "subscription/oldest_unacked_message_age") &&
    !strcontains(google_monitoring_dashboard.cdc.dashboard_json, "push_request_count"))
    error_message = "The dashboard shows the pull subscriptions' backlog, age and acks, and no push tiles."
  }
  assert {
    condition     = output.function_url == "" && output.worker_pool == "cdc-worker"
    error_message = "Outputs name the worker pool, not a function."
  }
}

run "pull_own_worker_image" {
  command = plan

  variables {
    delivery     = "pull"
    worker_image = "europe-west1-docker.pkg.dev/test-project/cloudsql-cache/worker:test"
  }

  assert {
    condition = (google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].image == "europe-west1-docker.pkg.dev/test-project/cloudsql-cache/worker:test" &&
    google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].command == null)
    error_message = "A worker_image runs its own entrypoint."
  }
}

run "push_has_no_worker" {
  command = plan

  assert {
    condition     = length(google_cloud_run_v2_worker_pool.worker) == 0 && length(google_service_account.worker) == 0 && length(google_pubsub_subscription.pull) == 0 && length(google_pubsub_subscription_iam_member.worker_subscriber) == 0
    error_message = "delivery = push creates no worker pool, worker account or pull subscription."
  }
  assert {
    condition     = toset(keys(google_pubsub_subscription_iam_member.dead_letter_subscriber)) == toset(keys(google_pubsub_subscription.push))
    error_message = "Dead letters are forwarded from the push subscriptions."
  }
}

run "bad_worker_cpu_is_refused" {
  command = plan

  variables {
    delivery   = "pull"
    worker_cpu = "0.5"
  }

  expect_failures = [var.worker_cpu]
}
