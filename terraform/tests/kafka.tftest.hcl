# delivery = "kafka": a Managed Service for Apache Kafka cluster in the VPC with one topic per
# table, or an existing cluster's bootstrap address; Debezium's sink and the worker pool's
# consumer group follow. Header blocks as in network.tftest.hcl.

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

run "managed_kafka" {
  command = plan

  variables {
    delivery         = "kafka"
    kafka_vcpu_count = 6
    kafka_memory_gib = 12
    kafka_partitions = 12
  }

  assert {
    condition = (length(google_managed_kafka_cluster.cdc) == 1 &&
      tonumber(google_managed_kafka_cluster.cdc[0].capacity_config[0].vcpu_count) == 6 &&
    tonumber(google_managed_kafka_cluster.cdc[0].capacity_config[0].memory_bytes) == 12 * 1073741824)
    error_message = "One cluster, sized by kafka_vcpu_count and kafka_memory_gib."
  }
  assert {
    condition     = google_managed_kafka_cluster.cdc[0].gcp_config[0].access_config[0].network_configs[0].subnet == "projects/test-project/regions/europe-west1/subnetworks/cdc-subnet"
    error_message = "The cluster is reachable in our subnet only."
  }
  assert {
    condition     = toset([for t in google_managed_kafka_topic.cdc : t.topic_id]) == toset(["cdc.inventory.customers", "cdc.inventory.orders", "heartbeat.cdc", "cdc-rejected"])
    error_message = "One topic per table, the heartbeat topic and the dead-letter topic."
  }
  assert {
    condition = (google_managed_kafka_topic.cdc["inventory.customers"].partition_count == 12 &&
      google_managed_kafka_topic.cdc["__heartbeat"].partition_count == 1 &&
    alltrue([for t in google_managed_kafka_topic.cdc : t.replication_factor == 3 && t.configs["cleanup.policy"] == "delete" && t.configs["retention.ms"] == "604800000"]))
    error_message = "Table topics have kafka_partitions partitions, 3 replicas, no compaction, 7 days of retention."
  }
  assert {
    condition = (strcontains(output.debezium_application_properties, "debezium.sink.type=kafka\n") &&
      strcontains(output.debezium_application_properties, "bootstrap.servers=bootstrap.cdc-kafka.europe-west1.managedkafka.test-project.cloud.goog:9092\n") &&
      strcontains(output.debezium_application_properties, "sasl.mechanism=OAUTHBEARER\n") &&
    !strcontains(output.debezium_application_properties, "debezium.sink.pubsub"))
    error_message = "Debezium publishes to the cluster's bootstrap address with Google OAUTHBEARER, not to Pub/Sub."
  }
  assert {
    condition     = output.kafka_bootstrap == "bootstrap.cdc-kafka.europe-west1.managedkafka.test-project.cloud.goog:9092"
    error_message = "The bootstrap address is Managed Kafka's DNS name for the cluster."
  }
  assert {
    condition     = google_project_iam_member.debezium_kafka[0].role == "roles/managedkafka.client"
    error_message = "Debezium's service account may produce."
  }
  assert {
    condition     = length(google_logging_metric.kafka_lag) == 1 && length(google_monitoring_alert_policy.kafka_lag) == 1
    error_message = "Consumer lag per partition is a metric with an alert."
  }
  assert {
    condition     = google_monitoring_alert_policy.kafka_lag[0].conditions[0].condition_prometheus_query_language[0].query == "max by (topic, partition) (cdc_kafka_partition_lag{namespace=\"cdc-worker\"}) > 100000"
    error_message = "The lag alert reads the worker's per-partition gauge from /metrics."
  }

  # The worker: the consumer group over every table topic and the heartbeat, in the VPC.
  assert {
    condition = (length(google_cloud_run_v2_worker_pool.worker) == 1 && length(google_cloud_run_v2_service.function) == 0 &&
    length(google_pubsub_subscription.push) == 0 && length(google_pubsub_subscription.pull) == 0)
    error_message = "Kafka runs the worker pool; no function and no Pub/Sub subscription consumes."
  }
  assert {
    condition     = length(google_pubsub_topic.cdc) == 0 && length(google_pubsub_topic_iam_member.debezium_publisher) == 0 && length(output.topics) == 0
    error_message = "Debezium writes to Kafka: no Pub/Sub topic per table, no publisher grant."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["DELIVERY"] == "kafka" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_BROKERS"] == "bootstrap.cdc-kafka.europe-west1.managedkafka.test-project.cloud.goog:9092" &&
      toset(split(",", { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_TOPICS"])) == toset(["cdc.inventory.customers", "cdc.inventory.orders", "heartbeat.cdc"]) &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_GROUP"] == "cdc-cache" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_SASL"] == "oauthbearer" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_TLS"] == "1" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_DLQ_TOPIC"] == "cdc-rejected" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["CACHE_SERVER_NAME"] == "cdc"
    )
    error_message = "The worker consumes every table topic and the heartbeat as group <name_prefix>-cache, with Google OAUTHBEARER over TLS, parking on the DLQ topic."
  }
  assert {
    condition     = !contains([for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name], "PUBSUB_SUBSCRIPTIONS")
    error_message = "No Pub/Sub subscriptions for Kafka."
  }
  assert {
    condition     = google_cloud_run_v2_worker_pool.worker[0].template[0].vpc_access[0].egress == "ALL_TRAFFIC"
    error_message = "The Kafka worker resolves Managed Kafka's private DNS names through the VPC."
  }
  assert {
    condition     = google_project_iam_member.worker_kafka[0].role == "roles/managedkafka.client" && google_project_iam_member.worker_kafka[0].member == google_service_account.worker[0].member
    error_message = "The worker's service account may consume."
  }
  assert {
    condition = (length(google_monitoring_alert_policy.backlog_age) == 0 && length(google_monitoring_alert_policy.dead_letters) == 0 &&
    length(google_monitoring_alert_policy.debezium_silent.conditions[0].condition_absent) == 0 && strcontains(google_monitoring_alert_policy.debezium_silent.conditions[0].condition_prometheus_query_language[0].query, "debezium_metrics_Connected"))
    error_message = "Kafka: no Pub/Sub backlog alerts; Debezium's liveness comes from its own metrics, not a Pub/Sub heartbeat topic."
  }
}

run "existing_kafka" {
  command = plan

  variables {
    delivery        = "kafka"
    kafka_bootstrap = "10.8.0.11:9092,10.8.0.12:9092"
    kafka_auth      = "none"
  }

  assert {
    condition     = length(google_managed_kafka_cluster.cdc) == 0 && length(google_managed_kafka_topic.cdc) == 0
    error_message = "An existing cluster: nothing Kafka is created."
  }
  assert {
    condition = (strcontains(output.debezium_application_properties, "bootstrap.servers=10.8.0.11:9092,10.8.0.12:9092\n") &&
    !strcontains(output.debezium_application_properties, "sasl."))
    error_message = "Debezium uses the given bootstrap address, without SASL."
  }
  assert {
    condition     = length(google_project_iam_member.debezium_kafka) == 0 && length(google_project_iam_member.worker_kafka) == 0
    error_message = "No Google auth: no Managed Kafka role."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_BROKERS"] == "10.8.0.11:9092,10.8.0.12:9092" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_SASL"] == "none" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value if e.name != "REDIS_URL" }["KAFKA_TLS"] == "0" &&
      !contains([for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name], "KAFKA_DLQ_TOPIC")
    )
    error_message = "An existing plaintext cluster: the given brokers, no SASL or TLS, and rejects go to the Pub/Sub reject topic (no DLQ topic is created there)."
  }
}

run "push_has_no_kafka" {
  command = plan

  assert {
    condition     = length(google_managed_kafka_cluster.cdc) == 0 && length(google_logging_metric.kafka_lag) == 0 && length(google_project_iam_member.worker_kafka) == 0 && output.kafka_bootstrap == ""
    error_message = "delivery = push creates nothing for Kafka."
  }
  assert {
    condition     = strcontains(output.debezium_application_properties, "debezium.sink.type=pubsub\n")
    error_message = "delivery = push keeps the Pub/Sub sink."
  }
}
