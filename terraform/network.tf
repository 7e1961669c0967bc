# One VPC (created, or an existing one that already reaches Cloud SQL) with one subnet used by the
# Debezium VM and by Cloud Run's Direct VPC egress. Nothing gets an external IP.

resource "google_compute_network" "main" {
  count = var.network_name == "" ? 1 : 0

  name                    = "${var.name_prefix}-vpc"
  auto_create_subnetworks = false

  depends_on = [google_project_service.apis]
}

data "google_compute_network" "existing" {
  count = var.network_name == "" ? 0 : 1

  name = var.network_name
}

locals {
  network_id        = var.network_name == "" ? google_compute_network.main[0].id : data.google_compute_network.existing[0].id
  network_name      = var.network_name == "" ? google_compute_network.main[0].name : data.google_compute_network.existing[0].name
  network_self_link = var.network_name == "" ? google_compute_network.main[0].self_link : data.google_compute_network.existing[0].self_link
}

resource "google_compute_subnetwork" "main" {
  name          = "${var.name_prefix}-subnet"
  region        = var.region
  network       = local.network_id
  ip_cidr_range = var.subnet_cidr

  # Pub/Sub, Secret Manager, Monitoring and the Cloud SQL Admin API without external IPs.
  private_ip_google_access = true
}

# Cloud NAT: the VM has no external IP but pulls its images from quay.io, Docker Hub and gcr.io.
resource "google_compute_router" "nat" {
  name    = "${var.name_prefix}-router"
  region  = var.region
  network = local.network_id
}

resource "google_compute_router_nat" "nat" {
  name                               = "${var.name_prefix}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.main.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# SSH only through Identity-Aware Proxy's range, only to the Debezium VM.
resource "google_compute_firewall" "iap_ssh" {
  count = var.enable_iap_ssh ? 1 : 0

  name          = "${var.name_prefix}-allow-iap-ssh"
  network       = local.network_id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["${var.name_prefix}-debezium"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

# Serverless VPC Access connector, only when vpc_egress = "connector". Direct VPC egress is the
# default: no always-on connector VMs (min 2 x e2-micro) to pay for, lower latency, and the
# instances get subnet IPs directly.
resource "google_vpc_access_connector" "function" {
  count = var.vpc_egress == "connector" ? 1 : 0

  name          = "${var.name_prefix}-connector"
  region        = var.region
  network       = local.network_name
  ip_cidr_range = var.connector_cidr
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 3

  depends_on = [google_project_service.apis]
}
