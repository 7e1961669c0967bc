# cache = "redis" (Memorystore for Redis) or "memcached": a Memorystore for Memcached instance in
# the VPC, or existing memcached nodes (memcache_addrs). With memcached nothing of Redis is
# created and the function and worker get CACHE_BACKEND and MEMCACHE_ADDRS. Header blocks as in
# network.tftest.hcl.

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

run "redis_default" {
  command = plan

  assert {
    condition     = length(google_redis_instance.cache) == 1 && length(google_memcache_instance.cache) == 0 && length(google_secret_manager_secret.redis_url) == 1
    error_message = "The default cache is Memorystore for Redis, with its URL secret; no memcached."
  }
  assert {
    condition     = !contains([for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name], "CACHE_BACKEND")
    error_message = "Redis needs no CACHE_BACKEND (redis is the default)."
  }
  assert {
    condition     = length(google_service_networking_connection.psa) == 0
    error_message = "Without Cloud SQL or Memcached created here, no private services access is created."
  }
}

run "memorystore_memcached" {
  command = plan

  variables {
    cache                   = "memcached"
    message_format          = "full"
    memcache_node_count     = 2
    memcache_node_memory_mb = 4096
  }

  assert {
    condition = (length(google_memcache_instance.cache) == 1 &&
      google_memcache_instance.cache[0].memcache_parameters[0].params["disable-evictions"] == "true" &&
      google_memcache_instance.cache[0].memcache_version == "MEMCACHE_1_6_15" &&
      google_memcache_instance.cache[0].node_count == 2 && google_memcache_instance.cache[0].node_config[0].memory_size_mb == 4096 &&
    google_memcache_instance.cache[0].authorized_network == "projects/test-project/global/networks/cdc-vpc")
    error_message = "A Memorystore for Memcached 1.6 instance in our VPC, sized by the variables, evictions off (-M)."
  }
  assert {
    condition     = length(google_service_networking_connection.psa) == 1 && length(google_project_service.memcache) == 1
    error_message = "Memorystore for Memcached in a VPC created here gets private services access and its API."
  }
  assert {
    condition = (length(google_redis_instance.cache) == 0 && length(google_secret_manager_secret.redis_url) == 0 &&
      length(google_secret_manager_secret.redis_ca) == 0 && length(google_monitoring_alert_policy.redis_memory) == 0 &&
    toset(keys(google_secret_manager_secret_iam_member.runtime)) == toset([]))
    error_message = "memcached: no Redis instance, secrets, grants or Redis alert."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name => e.value }["CACHE_BACKEND"] == "memcached" &&
      { for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name => e.value }["MEMCACHE_ADDRS"] == "10.30.0.5:11211,10.30.0.6:11211" &&
      { for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name => e.value }["REJECT_TOPIC"] == "projects/test-project/topics/mock-topic"
    )
    error_message = "The function gets CACHE_BACKEND=memcached, every node in MEMCACHE_ADDRS and REJECT_TOPIC (memcached has no stream to park in)."
  }
  assert {
    condition = (length(setintersection(toset([for e in google_cloud_run_v2_service.function[0].template[0].containers[0].env : e.name]), toset(["REDIS_URL", "REDIS_CA_CERT"]))) == 0 &&
    length(google_cloud_run_v2_service.function[0].template[0].volumes) == 0)
    error_message = "No Redis URL, CA or CA volume with memcached."
  }
  assert {
    condition = (strcontains(google_monitoring_dashboard.cdc.dashboard_json, "memcache.googleapis.com/node/cache_memory") &&
    !strcontains(google_monitoring_dashboard.cdc.dashboard_json, "redis.googleapis.com") && length(google_monitoring_alert_policy.memcache_evictions) == 1)
    error_message = "The dashboard shows memcached's memory and items, not Redis; evictions are alerted on."
  }
  assert {
    condition     = output.memcache_addrs == "10.30.0.5:11211,10.30.0.6:11211" && output.redis_host == "" && output.redis_url_secret == ""
    error_message = "Outputs give the memcached nodes and no Redis."
  }
}

run "self_managed_memcached_pull" {
  command = plan

  variables {
    cache             = "memcached"
    memcache_addrs    = ["10.40.0.2:11211", "10.40.0.3:11211"]
    delivery          = "pull"
    message_format    = "compact"
    cache_config_yaml = "tables:\n  inventory.customers:\n    key: [id]\n    types: {id: bigint}\n"
  }

  assert {
    condition     = length(google_memcache_instance.cache) == 0 && length(google_project_service.memcache) == 0 && length(google_service_networking_connection.psa) == 0 && length(google_redis_instance.cache) == 0
    error_message = "Existing memcached nodes: no Memorystore instance, peering or Redis."
  }
  assert {
    condition = (
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value }["CACHE_BACKEND"] == "memcached" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value }["MEMCACHE_ADDRS"] == "10.40.0.2:11211,10.40.0.3:11211" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value }["CACHE_SERVER_NAME"] == "cdc" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value }["REJECT_TOPIC"] == "projects/test-project/topics/mock-topic" &&
      { for e in google_cloud_run_v2_worker_pool.worker[0].template[0].containers[0].env : e.name => e.value }["CACHE_CONFIG"] == "/config/cache.yaml"
    )
    error_message = "The worker gets the given memcached nodes, the reject topic and the config with keys and types."
  }
  assert {
    condition     = toset(keys(google_secret_manager_secret_iam_member.runtime)) == toset(["cache_config"])
    error_message = "The worker reads the config secret only."
  }
  assert {
    condition = (!strcontains(google_compute_instance.debezium.metadata["user-data"], "path: /etc/systemd/system/cache-schema-sync") &&
    length(google_secret_manager_secret_iam_member.debezium_redis) == 0 && length(google_project_iam_member.debezium_image_reader) == 0)
    error_message = "No column registry sync on the VM with memcached (the registry lives in Redis)."
  }
  assert {
    condition     = strcontains(output.debezium_application_properties, "debezium.format.value.schemas.enable=false\n")
    error_message = "The compact profile is still what Debezium publishes."
  }
}

run "memcached_compact_needs_config" {
  command = plan

  variables {
    cache          = "memcached"
    memcache_addrs = ["10.40.0.2:11211"]
  }

  expect_failures = [terraform_data.memcached_requirements]
}

run "bad_cache_is_refused" {
  command = plan

  variables {
    cache = "valkey"
  }

  expect_failures = [var.cache]
}
