# Resources that exist only for some choices of delivery and cache used to be unconditional:
# their old state addresses are the first instance now, so an existing push deployment plans no
# replacement on upgrade.

moved {
  from = google_cloud_run_v2_service.function
  to   = google_cloud_run_v2_service.function[0]
}

moved {
  from = google_service_account.function
  to   = google_service_account.function[0]
}

moved {
  from = google_service_account.push
  to   = google_service_account.push[0]
}

moved {
  from = google_cloud_run_v2_service_iam_member.push_invoker
  to   = google_cloud_run_v2_service_iam_member.push_invoker[0]
}

moved {
  from = google_service_account_iam_member.push_token_creator
  to   = google_service_account_iam_member.push_token_creator[0]
}

moved {
  from = google_logging_project_exclusion.run_requests
  to   = google_logging_project_exclusion.run_requests[0]
}

moved {
  from = google_monitoring_alert_policy.backlog_age
  to   = google_monitoring_alert_policy.backlog_age[0]
}

moved {
  from = google_monitoring_alert_policy.dead_letters
  to   = google_monitoring_alert_policy.dead_letters[0]
}

# The function's grants are the runtime's now (the worker's when it runs instead).
moved {
  from = google_secret_manager_secret_iam_member.function_redis_url
  to   = google_secret_manager_secret_iam_member.runtime["redis_url"]
}

moved {
  from = google_secret_manager_secret_iam_member.function_redis_ca
  to   = google_secret_manager_secret_iam_member.runtime["redis_ca"]
}

moved {
  from = google_secret_manager_secret_iam_member.function_cache_config[0]
  to   = google_secret_manager_secret_iam_member.runtime["cache_config"]
}

moved {
  from = google_pubsub_topic_iam_member.function_reject_publisher
  to   = google_pubsub_topic_iam_member.runtime_reject_publisher
}

moved {
  from = google_project_iam_member.function
  to   = google_project_iam_member.runtime
}

# cache = "memcached" creates no Redis.
moved {
  from = google_redis_instance.cache
  to   = google_redis_instance.cache[0]
}

moved {
  from = google_secret_manager_secret.redis_url
  to   = google_secret_manager_secret.redis_url[0]
}

moved {
  from = google_secret_manager_secret_version.redis_url
  to   = google_secret_manager_secret_version.redis_url[0]
}

moved {
  from = google_secret_manager_secret.redis_ca
  to   = google_secret_manager_secret.redis_ca[0]
}

moved {
  from = google_secret_manager_secret_version.redis_ca
  to   = google_secret_manager_secret_version.redis_ca[0]
}

moved {
  from = google_monitoring_alert_policy.redis_memory
  to   = google_monitoring_alert_policy.redis_memory[0]
}
