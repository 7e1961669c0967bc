# Cloud SQL branches: an instance created here (binlog on, private IP, its Debezium user) or an
# existing one read by name. Header blocks as in network.tftest.hcl.

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

run "existing_cloudsql" {
  command = plan

  variables {
    cloudsql_create = false
  }

  assert {
    condition     = length(google_sql_database_instance.mysql) == 0 && length(data.google_sql_database_instance.existing) == 1
    error_message = "cloudsql_create = false must read the instance and create none."
  }
  assert {
    condition     = length(google_sql_user.debezium) == 0 && length(google_service_networking_connection.psa) == 0
    error_message = "An existing instance gets no user and no private services peering from us."
  }
  assert {
    condition     = output.sql_connection_name == "test-project:europe-west1:orders-db"
    error_message = "The proxy must connect to the existing instance."
  }
  assert {
    condition     = strcontains(local.debezium_cloud_init, "test-project:europe-west1:orders-db")
    error_message = "The VM's cloud-init must start the Auth Proxy for the existing instance."
  }
  assert {
    condition     = google_secret_manager_secret_version.db_password.secret_data == "MockGeneratedPassword0123456789ab"
    error_message = "Without debezium_db_password the generated one is stored."
  }
}

run "existing_cloudsql_given_password" {
  command = plan

  variables {
    cloudsql_create      = false
    debezium_db_password = "given-password"
  }

  assert {
    condition     = google_secret_manager_secret_version.db_password.secret_data == "given-password"
    error_message = "A given debezium_db_password is the one stored."
  }
}

run "created_cloudsql" {
  command = plan

  variables {
    cloudsql_create        = true
    cloudsql_instance_name = "cdc-mysql"
    network_name           = ""
  }

  assert {
    condition     = length(google_sql_database_instance.mysql) == 1 && length(data.google_sql_database_instance.existing) == 0
    error_message = "cloudsql_create = true must create the instance and read none."
  }
  assert {
    condition     = google_sql_database_instance.mysql[0].database_version == "MYSQL_8_0"
    error_message = "MySQL 8."
  }
  assert {
    condition = (
      google_sql_database_instance.mysql[0].settings[0].backup_configuration[0].binary_log_enabled &&
      google_sql_database_instance.mysql[0].settings[0].backup_configuration[0].transaction_log_retention_days == 7
    )
    error_message = "Debezium needs the binlog, kept binlog_retention_days."
  }
  assert {
    condition = (
      google_sql_database_instance.mysql[0].settings[0].ip_configuration[0].ipv4_enabled == false &&
      google_sql_database_instance.mysql[0].settings[0].ip_configuration[0].private_network == "https://www.googleapis.com/compute/v1/projects/test-project/global/networks/cdc-vpc"
    )
    error_message = "Private IP only, on the created VPC."
  }
  assert {
    condition     = anytrue([for f in google_sql_database_instance.mysql[0].settings[0].database_flags : f.name == "binlog_row_image" && f.value == "full"])
    error_message = "Debezium needs full row images."
  }
  assert {
    condition     = length(google_service_networking_connection.psa) == 1 && google_service_networking_connection.psa[0].network == "projects/test-project/global/networks/cdc-vpc"
    error_message = "A created instance needs private services access on the VPC."
  }
  assert {
    condition     = length(google_sql_user.debezium) == 1 && google_sql_user.debezium[0].password == "MockGeneratedPassword0123456789ab"
    error_message = "A created instance gets the Debezium user with the stored password."
  }
  assert {
    condition     = output.sql_connection_name == "test-project:europe-west1:cdc-mysql"
    error_message = "The proxy must connect to the created instance."
  }
}
