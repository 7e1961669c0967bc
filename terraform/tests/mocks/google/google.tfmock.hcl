# Values the mocked google provider returns for computed attributes during plan (the test files
# set override_during = plan). Without them a mock invents random strings and empty lists, so
# references such as the subnet's network, the push endpoint, the Redis URL secret or the CA
# join would be checked against nothing. Shaped like what the real API returns.

mock_data "google_project" {
  defaults = {
    number = "123456789012"
  }
}

mock_data "google_compute_network" {
  defaults = {
    id        = "projects/test-project/global/networks/existing-vpc"
    self_link = "https://www.googleapis.com/compute/v1/projects/test-project/global/networks/existing-vpc"
  }
}

mock_resource "google_compute_network" {
  defaults = {
    id        = "projects/test-project/global/networks/cdc-vpc"
    self_link = "https://www.googleapis.com/compute/v1/projects/test-project/global/networks/cdc-vpc"
  }
}

mock_resource "google_compute_subnetwork" {
  defaults = {
    id        = "projects/test-project/regions/europe-west1/subnetworks/cdc-subnet"
    self_link = "https://www.googleapis.com/compute/v1/projects/test-project/regions/europe-west1/subnetworks/cdc-subnet"
  }
}

mock_resource "google_vpc_access_connector" {
  defaults = {
    id = "projects/test-project/locations/europe-west1/connectors/cdc-connector"
  }
}

mock_data "google_sql_database_instance" {
  defaults = {
    connection_name = "test-project:europe-west1:orders-db"
  }
}

mock_resource "google_sql_database_instance" {
  defaults = {
    connection_name = "test-project:europe-west1:cdc-mysql"
  }
}

mock_resource "google_redis_instance" {
  defaults = {
    id          = "projects/test-project/locations/europe-west1/instances/cdc-cache"
    host        = "10.20.0.3"
    port        = 6378
    auth_string = "mock-auth-string"
    server_ca_certs = [
      { cert = "-----BEGIN CERTIFICATE-----\nMOCK\n-----END CERTIFICATE-----\n" },
    ]
  }
}

mock_resource "google_cloud_run_v2_service" {
  defaults = {
    uri = "https://cdc-function-abc123-ew.a.run.app"
  }
}

# One mock for every service account; the tests tell them apart by their account_id.
mock_resource "google_service_account" {
  defaults = {
    email  = "cdc-sa@test-project.iam.gserviceaccount.com"
    member = "serviceAccount:cdc-sa@test-project.iam.gserviceaccount.com"
    name   = "projects/test-project/serviceAccounts/cdc-sa@test-project.iam.gserviceaccount.com"
  }
}

mock_resource "google_pubsub_topic" {
  defaults = {
    id = "projects/test-project/topics/mock-topic"
  }
}

mock_resource "google_pubsub_subscription" {
  defaults = {
    id = "projects/test-project/subscriptions/mock-subscription"
  }
}

mock_resource "google_secret_manager_secret" {
  defaults = {
    id = "projects/test-project/secrets/mock-secret"
  }
}

mock_resource "google_monitoring_dashboard" {
  defaults = {
    id = "projects/123456789012/dashboards/mock-dashboard"
  }
}

mock_resource "google_monitoring_notification_channel" {
  defaults = {
    id = "projects/test-project/notificationChannels/1234"
  }
}

# Two nodes, as the API lists them: MEMCACHE_ADDRS is built from host and port.
mock_resource "google_memcache_instance" {
  defaults = {
    id = "projects/test-project/locations/europe-west1/instances/cdc-memcache"
    memcache_nodes = [
      { node_id = "node-a", zone = "europe-west1-b", host = "10.30.0.5", port = 11211, state = "READY" },
      { node_id = "node-b", zone = "europe-west1-c", host = "10.30.0.6", port = 11211, state = "READY" },
    ]
  }
}
