# One service account per component, each with only what it uses. Resource-level bindings where
# the API allows them; project-level only for log/metric writing and Cloud SQL connect.

resource "google_service_account" "debezium" {
  account_id   = "${var.name_prefix}-debezium"
  display_name = "Debezium Server VM (binlog -> Pub/Sub)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "function" {
  count = local.push ? 1 : 0

  account_id   = "${var.name_prefix}-function"
  display_name = "cloudsql-cache handler on Cloud Run"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push" {
  count = local.push ? 1 : 0

  account_id   = "${var.name_prefix}-push"
  display_name = "Pub/Sub push identity (OIDC) invoking the handler"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "worker" {
  count = local.worker ? 1 : 0

  account_id   = "${var.name_prefix}-worker"
  display_name = "cloudsql-cache worker on the Cloud Run worker pool (${var.delivery})"

  depends_on = [google_project_service.apis]
}

locals {
  # The runtime's identity: the function's (push) or the worker's (pull, kafka). Both are given
  # the same grants for the cache, the config, rejects and telemetry.
  runtime_member = local.push ? google_service_account.function[0].member : google_service_account.worker[0].member

  # Secrets the runtime reads at start (env or mounted files). Keys are static so for_each
  # knows them at plan time.
  runtime_secrets = merge(
    local.redis ? {
      redis_url = google_secret_manager_secret.redis_url[0].id
      redis_ca  = google_secret_manager_secret.redis_ca[0].id
    } : {},
    var.cache_config_yaml == "" ? {} : { cache_config = google_secret_manager_secret.cache_config[0].id },
  )
}

# ---------------------------------------------------------------- Debezium VM
resource "google_pubsub_topic_iam_member" "debezium_publisher" {
  for_each = google_pubsub_topic.cdc

  topic  = each.value.id
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
  for_each = local.registry_sync ? {
    url = google_secret_manager_secret.redis_url[0].id
    ca  = google_secret_manager_secret.redis_ca[0].id
  } : {}

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.debezium.member
}

resource "google_project_iam_member" "debezium_image_reader" {
  count = local.registry_sync ? 1 : 0

  project = var.project_id
  role    = "roles/artifactregistry.reader"
  member  = google_service_account.debezium.member
}

# ---------------------------------------------------------------- runtime (function or worker)
resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = local.runtime_secrets

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

# REJECT_TOPIC: parked messages.
resource "google_pubsub_topic_iam_member" "runtime_reject_publisher" {
  topic  = google_pubsub_topic.reject.id
  role   = "roles/pubsub.publisher"
  member = local.runtime_member
}

resource "google_project_iam_member" "runtime" {
  for_each = toset([
    "roles/logging.logWriter",       # summaries, rejects, errors
    "roles/monitoring.metricWriter", # /metrics through the collector sidecar
  ])

  project = var.project_id
  role    = each.value
  member  = local.runtime_member
}

# The worker streams its own subscriptions only: subscriber on each of them, nothing on the
# topics or the project.
resource "google_pubsub_subscription_iam_member" "worker_subscriber" {
  for_each = google_pubsub_subscription.pull

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.worker[0].member
}

# ---------------------------------------------------------------- push identity
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = local.push ? 1 : 0

  project  = var.project_id
  location = google_cloud_run_v2_service.function[0].location
  name     = google_cloud_run_v2_service.function[0].name
  role     = "roles/run.invoker"
  member   = google_service_account.push[0].member
}

# The Pub/Sub service agent mints the OIDC tokens for the push identity. Needed explicitly only
# in projects created before 2021-04-08, harmless elsewhere.
resource "google_service_account_iam_member" "push_token_creator" {
  count = local.push ? 1 : 0

  service_account_id = google_service_account.push[0].name
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
  for_each = local.pull ? google_pubsub_subscription.pull : google_pubsub_subscription.push

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
