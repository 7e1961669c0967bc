# Topics Debezium publishes to (one per table, the heartbeat, the signal table), one push
# subscription (delivery = "push") or pull subscription (delivery = "pull") per consumed topic,
# a dead-letter topic and the handler's reject topic. Topics
# and subscriptions that only hold messages for people/tools get a pull subscription, because a
# topic without subscriptions drops what is published to it.

# With Kafka, Debezium writes to Kafka topics of the same names (kafka.tf) and none of these exist.
resource "google_pubsub_topic" "cdc" {
  for_each = local.kafka ? {} : local.debezium_topics

  name   = each.value
  labels = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push ? local.consumed_topics : {}

  name   = "${local.push_subscription_prefix}${each.value}"
  topic  = google_pubsub_topic.cdc[each.key].id
  labels = local.labels

  # Equal to the Cloud Run request timeout: a handler still working is not redelivered meanwhile.
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false
  enable_message_ordering    = var.subscription_message_ordering

  # Never delete an idle subscription (a quiet table must keep its subscription).
  expiration_policy {
    ttl = ""
  }

  # 5xx (Redis down) -> exponential backoff between these bounds instead of a tight retry loop.
  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = google_cloud_run_v2_service.function[0].uri

    oidc_token {
      service_account_email = google_service_account.push[0].email
      audience              = google_cloud_run_v2_service.function[0].uri
    }

    # Default: the wrapped JSON envelope. It carries messageId, publishTime, orderingKey,
    # attributes and deliveryAttempt in one body the handler already parses, and it is what the
    # local push bridge sends, so production and tests take the same code path. Unwrapped saves
    # the base64 overhead (~33% of the body) and moves metadata to x-goog-pubsub-* headers;
    # the handler accepts both.
    dynamic "no_wrapper" {
      for_each = var.push_unwrapped ? [1] : []
      content {
        write_metadata = true
      }
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invoker,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# The worker's streaming pull (delivery = "pull"): the push subscription's policies without the
# push. The worker extends the ack deadline of what it holds, so ack_deadline_seconds only bounds
# how soon a message held by a crashed instance is redelivered.
resource "google_pubsub_subscription" "pull" {
  for_each = local.pull ? local.consumed_topics : {}

  name   = "${local.pull_subscription_prefix}${each.value}"
  topic  = google_pubsub_topic.cdc[each.key].id
  labels = local.labels

  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false
  enable_message_ordering    = var.subscription_message_ordering

  expiration_policy {
    ttl = ""
  }

  # A nacked message (Redis down) comes back after this backoff, not at once.
  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}

# ---------------------------------------------------------------- dead letters
resource "google_pubsub_topic" "dead_letter" {
  name   = "${var.name_prefix}-dead-letter"
  labels = local.labels

  depends_on = [google_project_service.apis]
}

# Holds dead-lettered messages for inspection and replay (cachectl); pulled, never pushed.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name_prefix}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# ---------------------------------------------------------------- rejects (handler's parking)
resource "google_pubsub_topic" "reject" {
  name   = "${var.name_prefix}-rejects"
  labels = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "reject" {
  name                       = "${var.name_prefix}-rejects-hold"
  topic                      = google_pubsub_topic.reject.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}
