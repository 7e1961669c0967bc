# Network branches: a VPC created here or an existing one (network_name), and the function's
# egress into it: Direct VPC egress or a Serverless VPC Access connector.
#
# How these files work (see README.md, "Testing the Terraform"): every file mocks both providers
# with the shared values in tests/mocks/ and plans (command = plan) with override_during = plan, so
# computed attributes hold those values at plan time and the assertions see real references.
# A new branch is a new run block here, or a new file with the same three header blocks.

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

run "created_vpc_direct_egress" {
  command = plan

  variables {
    network_name = ""
    vpc_egress   = "direct"
  }

  assert {
    condition     = length(google_compute_network.main) == 1 && length(data.google_compute_network.existing) == 0
    error_message = "network_name = \"\" must create the VPC and read none."
  }
  assert {
    condition     = google_compute_subnetwork.main.network == "projects/test-project/global/networks/cdc-vpc"
    error_message = "The subnet must be in the created VPC."
  }
  assert {
    condition     = google_redis_instance.cache[0].authorized_network == "projects/test-project/global/networks/cdc-vpc"
    error_message = "Memorystore must peer with the created VPC."
  }
  assert {
    condition     = length(google_vpc_access_connector.function) == 0
    error_message = "Direct VPC egress must not create a connector (its VMs cost money)."
  }
  assert {
    condition     = google_cloud_run_v2_service.function[0].template[0].vpc_access[0].connector == null
    error_message = "Direct VPC egress must not name a connector."
  }
  assert {
    condition = (
      length(google_cloud_run_v2_service.function[0].template[0].vpc_access[0].network_interfaces) == 1 &&
      google_cloud_run_v2_service.function[0].template[0].vpc_access[0].network_interfaces[0].subnetwork == "projects/test-project/regions/europe-west1/subnetworks/cdc-subnet"
    )
    error_message = "Direct VPC egress must put the function on the created subnet."
  }
  assert {
    condition     = google_cloud_run_v2_service.function[0].template[0].vpc_access[0].egress == "PRIVATE_RANGES_ONLY"
    error_message = "Only private ranges (Memorystore) go through the VPC."
  }
}

run "existing_vpc_connector_egress" {
  command = plan

  variables {
    network_name = "existing-vpc"
    vpc_egress   = "connector"
  }

  assert {
    condition     = length(google_compute_network.main) == 0 && length(data.google_compute_network.existing) == 1
    error_message = "network_name set must read the existing VPC and create none."
  }
  assert {
    condition     = google_compute_subnetwork.main.network == "projects/test-project/global/networks/existing-vpc"
    error_message = "The subnet must be in the existing VPC."
  }
  assert {
    condition     = google_redis_instance.cache[0].authorized_network == "projects/test-project/global/networks/existing-vpc"
    error_message = "Memorystore must peer with the existing VPC."
  }
  assert {
    condition     = length(google_vpc_access_connector.function) == 1 && google_vpc_access_connector.function[0].network == "existing-vpc"
    error_message = "Connector egress must create one connector in the existing VPC (by name)."
  }
  assert {
    condition     = google_vpc_access_connector.function[0].ip_cidr_range == "10.8.0.0/28"
    error_message = "The connector takes connector_cidr."
  }
  assert {
    condition = (
      google_cloud_run_v2_service.function[0].template[0].vpc_access[0].connector == "projects/test-project/locations/europe-west1/connectors/cdc-connector" &&
      length(google_cloud_run_v2_service.function[0].template[0].vpc_access[0].network_interfaces) == 0
    )
    error_message = "Connector egress must route through the connector and set no network interface."
  }
}

run "bad_vpc_egress_is_refused" {
  command = plan

  variables {
    vpc_egress = "nat"
  }

  expect_failures = [var.vpc_egress]
}
