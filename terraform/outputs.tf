output "function_url" {
  description = "Cloud Run URL of the handler (internal ingress: reachable by Pub/Sub push and from the VPC only); empty unless delivery = \"push\"."
  value       = try(google_cloud_run_v2_service.function[0].uri, "")
}

output "function_service" {
  description = "Cloud Run service name (delivery = \"push\"); empty otherwise."
  value       = try(google_cloud_run_v2_service.function[0].name, "")
}

output "worker_pool" {
  description = "Cloud Run worker pool running the worker (delivery = \"pull\" or \"kafka\"); empty for push."
  value       = try(google_cloud_run_v2_worker_pool.worker[0].name, "")
}

output "redis_host" {
  description = "Memorystore private IP (TLS port below; AUTH string in the redis_url secret); empty with cache = memcached."
  value       = try(google_redis_instance.cache[0].host, "")
}

output "redis_port" {
  description = "Memorystore port (6378 with in-transit encryption)."
  value       = try(google_redis_instance.cache[0].port, 0)
}

output "redis_url_secret" {
  description = "Secret Manager secret holding REDIS_URL (rediss://:AUTH@host:port/0) for services reading the cache."
  value       = try(google_secret_manager_secret.redis_url[0].id, "")
}

output "redis_ca_secret" {
  description = "Secret Manager secret holding the Memorystore server CA (REDIS_CA_CERT)."
  value       = try(google_secret_manager_secret.redis_ca[0].id, "")
}

output "memcache_addrs" {
  description = "MEMCACHE_ADDRS (host:port,...) of the memcached nodes (cache = memcached); empty with Redis."
  value       = local.memcached ? join(",", local.memcache_addrs) : ""
}

output "topics" {
  description = "Pub/Sub topic per captured table (plus heartbeat and signal topics); empty with Kafka (see kafka_bootstrap)."
  value       = { for k, t in google_pubsub_topic.cdc : k => t.name }
}

output "subscriptions" {
  description = "Push (delivery = \"push\") or pull (\"pull\") subscription per consumed topic; empty for kafka."
  value       = { for k, s in merge(google_pubsub_subscription.push, google_pubsub_subscription.pull) : k => s.name }
}

output "dead_letter_topic" {
  description = "Dead-letter topic; messages are held in dead_letter_subscription."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription" {
  description = "Pull subscription holding dead-lettered messages for inspection/replay."
  value       = google_pubsub_subscription.dead_letter.name
}

output "reject_topic" {
  description = "REJECT_TOPIC of the handler; parked messages are held in reject_subscription."
  value       = google_pubsub_topic.reject.id
}

output "reject_subscription" {
  description = "Pull subscription holding parked (rejected) messages."
  value       = google_pubsub_subscription.reject.name
}

output "dashboard_url" {
  description = "Cloud Monitoring dashboard."
  value       = "https://console.cloud.google.com/monitoring/dashboards/custom/${element(split("/", google_monitoring_dashboard.cdc.id), 3)}?project=${var.project_id}"
}

output "debezium_vm" {
  description = "Debezium Server VM name and zone."
  value       = { name = google_compute_instance.debezium.name, zone = google_compute_instance.debezium.zone }
}

output "debezium_ssh" {
  description = "Shell on the Debezium VM through IAP (no external IP)."
  value       = "gcloud compute ssh ${google_compute_instance.debezium.name} --zone ${google_compute_instance.debezium.zone} --tunnel-through-iap --project ${var.project_id}"
}

output "debezium_application_properties" {
  description = "The rendered Debezium Server configuration (contains no secret)."
  value       = local.debezium_application_properties
}

output "db_password_secret" {
  description = "Secret Manager secret with the Debezium MySQL user's password."
  value       = google_secret_manager_secret.db_password.id
}

output "sql_connection_name" {
  description = "Cloud SQL connection name (project:region:instance)."
  value       = local.sql_connection_name
}

output "kafka_bootstrap" {
  description = "Kafka bootstrap address Debezium and the worker use (delivery = \"kafka\"); empty otherwise."
  value       = local.kafka ? local.kafka_bootstrap : ""
}
