# One service account per component, each with only what it uses. Resource-level bindings where
# the API allows them; project-level only for log/metric writing and Cloud SQL connect.

resource "google_service_account" "debezium" {
  account_id   = "${var.name_prefix}-debezium"
  display_name = "Debezium Server VM (binlog -> Pub/Sub)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "function" {
  account_id   = "${var.name_prefix}-function"
  display_name = "cloudsql-cache handler on Cloud Run"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push" {
  account_id   = "${var.name_prefix}-push"
  display_name = "Pub/Sub push identity (OIDC) invoking the handler"

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------- Debezium VM
resource "google_pubsub_topic_iam_member" "debezium_publisher" {
  for_each = local.debezium_topics

  topic  = google_pubsub_topic.cdc[each.key].id
  role   = "roles/pubsub.publisher"
  member = google_service_account.debezium.member
}

resource "google_secret_manager_secret_iam_member" "debezium_db_password" {
  secret_id = google_secret_manager_secret.db_password.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.debezium.member
}

resource "google_project_iam_member" "debezium" {
  for_each = toset([
    "roles/cloudsql.client",         # Auth Proxy connects to the instance
    "roles/logging.logWriter",       # container logs from COS
    "roles/monitoring.metricWriter", # Debezium metrics via the collector
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.debezium.member
}

# Compact format: the VM runs `cachectl schema sync` from the function's image and writes the
# column registry to the cache, so it reads the cache's URL and CA and pulls the image.
resource "google_secret_manager_secret_iam_member" "debezium_redis" {
  for_each = var.message_format == "compact" ? {
    url = google_secret_manager_secret.redis_url.id
    ca  = google_secret_manager_secret.redis_ca.id
  } : {}

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.debezium.member
}

resource "google_project_iam_member" "debezium_image_reader" {
  count = var.message_format == "compact" ? 1 : 0

  project = var.project_id
  role    = "roles/artifactregistry.reader"
  member  = google_service_account.debezium.member
}

# ---------------------------------------------------------------- function
resource "google_secret_manager_secret_iam_member" "function_redis_url" {
  secret_id = google_secret_manager_secret.redis_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "function_redis_ca" {
  secret_id = google_secret_manager_secret.redis_ca.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "function_cache_config" {
  count = var.cache_config_yaml == "" ? 0 : 1

  secret_id = google_secret_manager_secret.cache_config[0].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

resource "google_pubsub_topic_iam_member" "function_reject_publisher" {
  topic  = google_pubsub_topic.reject.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.function.member
}

resource "google_project_iam_member" "function" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.function.member
}

# ---------------------------------------------------------------- push identity
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  project  = var.project_id
  location = google_cloud_run_v2_service.function.location
  name     = google_cloud_run_v2_service.function.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# The Pub/Sub service agent mints the OIDC tokens for the push identity. Needed explicitly only
# in projects created before 2021-04-08, harmless elsewhere.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# ---------------------------------------------------------------- dead lettering
# Pub/Sub's service agent forwards undeliverable messages: it must publish to the DLQ and
# acknowledge (subscriber) on each source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.pushed_topics

  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
