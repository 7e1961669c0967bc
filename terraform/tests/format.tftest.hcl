# message_format branches: the full profile (schema envelopes, ordering keys, Debezium's default
# headers) and the compact one (flattened schemaless rows, no ordering key, no attributes,
# batched publishes). Header blocks as in network.tftest.hcl.

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

run "format_full" {
  command = plan

  variables {
    message_format = "full"
  }

  assert {
    condition = (strcontains(output.debezium_application_properties, "debezium.sink.pubsub.ordering.enabled=true\n") &&
    strcontains(output.debezium_application_properties, "debezium.format.value.schemas.enable=true\n"))
    error_message = "The full profile publishes schema envelopes with ordering keys."
  }
  assert {
    condition = (!strcontains(output.debezium_application_properties, "debezium.transforms=") &&
    !strcontains(output.debezium_application_properties, "extended.headers.enabled"))
    error_message = "The full profile has no transforms and keeps Debezium's default headers."
  }
  assert {
    condition     = length(google_secret_manager_secret_iam_member.debezium_redis) == 0 && length(google_project_iam_member.debezium_image_reader) == 0
    error_message = "The full format needs no registry sync: the VM gets no Redis secrets and no image access."
  }
  assert {
    condition     = !strcontains(google_compute_instance.debezium.metadata["user-data"], "/etc/systemd/system/cache-schema-sync.service")
    error_message = "The full format renders no registry sync units."
  }
}

run "format_compact" {
  command = plan

  variables {
    message_format = "compact"
  }

  assert {
    condition = (strcontains(output.debezium_application_properties, "debezium.sink.pubsub.ordering.enabled=false\n") &&
      strcontains(output.debezium_application_properties, "debezium.format.value.schemas.enable=false\n") &&
    strcontains(output.debezium_application_properties, "debezium.sink.pubsub.batch.element.count.threshold=1000\n"))
    error_message = "The compact profile publishes schemaless rows without ordering keys, 1,000 a request."
  }
  assert {
    condition = (strcontains(output.debezium_application_properties, "debezium.transforms=unwrap,dropkeyheaders\n") &&
      strcontains(output.debezium_application_properties, "debezium.transforms.unwrap.add.fields=op,source.file,source.pos,source.row,source.ts_ms,db,table,ts_ms\n") &&
      strcontains(output.debezium_application_properties, "debezium.transforms.unwrap.delete.tombstone.handling.mode=rewrite\n") &&
    strcontains(output.debezium_application_properties, "debezium.source.extended.headers.enabled=false\n"))
    error_message = "The compact profile flattens rows, rewrites deletes and sends no headers."
  }
  assert {
    condition     = toset(keys(google_secret_manager_secret_iam_member.debezium_redis)) == toset(["url", "ca"]) && length(google_project_iam_member.debezium_image_reader) == 1
    error_message = "The VM reads the cache's URL and CA and pulls the function's image to run cachectl schema sync."
  }
  assert {
    condition = (strcontains(google_compute_instance.debezium.metadata["user-data"], "schema sync -tables inventory.customers,inventory.orders") &&
    strcontains(google_compute_instance.debezium.metadata["user-data"], "--entrypoint /cachectl europe-west1-docker.pkg.dev/test-project/cloudsql-cache/function:test"))
    error_message = "The VM syncs the registry of every table with cachectl from the function's image."
  }
}

run "format_rejects_other" {
  command = plan

  variables {
    message_format = "avro"
  }

  expect_failures = [var.message_format]
}
