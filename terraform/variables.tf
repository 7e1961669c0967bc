# ---------------------------------------------------------------- project
variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region for Cloud Run, Memorystore, Cloud SQL and the subnet."
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of the Debezium VM and its data disk; null means <region>-b."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name (service accounts, VM, service, subscriptions)."
  type        = string
  default     = "cdc"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix: 2-12 chars, lowercase letters, digits and '-', starting with a letter (service account ids are at most 30 chars)."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------- what is cached
variable "tables" {
  description = "Tables to capture and cache, as \"db.table\". One Pub/Sub topic and push subscription each."
  type        = list(string)

  validation {
    condition     = length(var.tables) > 0 && alltrue([for t in var.tables : can(regex("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", t))])
    error_message = "Each table is \"db.table\" with letters, digits, '_' or '-' only (characters Pub/Sub topic names accept)."
  }
}

variable "topic_prefix" {
  description = "Debezium topic.prefix: topics are <topic_prefix>.<db>.<table>. Changing it means a new snapshot."
  type        = string
  default     = "cdc"

  # Pub/Sub: 3-255 chars, starts with a letter, letters/digits/- _ . ~ + %, never "goog...".
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{2,99}$", var.topic_prefix)) && !startswith(lower(var.topic_prefix), "goog")
    error_message = "topic_prefix: 3-100 chars, starts with a letter, then letters, digits, '_' or '-'; must not start with \"goog\"."
  }
}

# ---------------------------------------------------------------- Debezium Server VM
variable "debezium_image" {
  description = "Debezium Server image, pinned."
  type        = string
  default     = "quay.io/debezium/server:3.6.1.Final"
}

variable "cloudsql_proxy_image" {
  description = "Cloud SQL Auth Proxy image, pinned."
  type        = string
  default     = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0"
}

variable "otel_collector_image" {
  description = "OpenTelemetry Collector (contrib: has the googlemanagedprometheus exporter), pinned."
  type        = string
  default     = "otel/opentelemetry-collector-contrib:0.115.0"
}

variable "debezium_machine_type" {
  description = "Debezium VM type: e2-small (2 GB) for a few tables, e2-medium (4 GB) leaves room for snapshots."
  type        = string
  default     = "e2-medium"
}

variable "debezium_java_max_ram_percent" {
  description = "JVM heap as % of VM memory (the proxy and collector need ~200 MB)."
  type        = number
  default     = 60
}

variable "debezium_data_disk_gb" {
  description = "Persistent disk for offsets and schema history (tiny; 10 GB is the pd-balanced floor that performs)."
  type        = number
  default     = 10
}

variable "debezium_server_id" {
  description = "MySQL server id Debezium uses as a binlog client; unique among the instance's replicas."
  type        = number
  default     = 184054
}

variable "debezium_db_user" {
  description = "MySQL user Debezium logs in as."
  type        = string
  default     = "debezium"
}

variable "debezium_db_password" {
  description = "Password of an existing Debezium MySQL user; null generates one (read it from Secret Manager to create the user)."
  type        = string
  default     = null
  sensitive   = true
}

variable "debezium_signal_table" {
  description = "Signal table \"db.table\" for incremental snapshots; empty disables signalling."
  type        = string
  default     = ""

  validation {
    condition     = var.debezium_signal_table == "" || can(regex("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", var.debezium_signal_table))
    error_message = "debezium_signal_table is empty or \"db.table\"."
  }
}

variable "message_format" {
  description = "Debezium's message profile (debezium-server/application.properties): \"full\" (schema envelopes, row key as ordering key, ~3-7 KB a change) or \"compact\" (flattened schemaless rows, no ordering key, batched publishes, ~0.3-0.7 KB; key columns and types from the column registry, which the Debezium VM syncs from information_schema at start and every minute, so cache_config_yaml needs no key:)."
  type        = string
  default     = "compact"
  validation {
    condition     = contains(["full", "compact"], var.message_format)
    error_message = "message_format is \"full\" or \"compact\"."
  }
}

variable "debezium_heartbeat_interval_ms" {
  description = "Debezium heartbeat period; also the granularity of the 'Debezium silent' alert."
  type        = number
  default     = 10000
}

# ---------------------------------------------------------------- function on Cloud Run
variable "function_image" {
  description = "Image of the handler function (see docs/deploy.md: make function-image)."
  type        = string
}

variable "function_cpu" {
  description = "vCPU per Cloud Run instance."
  type        = string
  default     = "1"
}

variable "function_memory" {
  description = "Memory per Cloud Run instance."
  type        = string
  default     = "512Mi"
}

variable "function_concurrency" {
  description = "Concurrent push requests per instance: each is one Redis round trip, so high concurrency is cheap."
  type        = number
  default     = 80
}

variable "function_min_instances" {
  description = "Minimum instances; 1 removes cold starts from lag at ~1 idle instance of cost."
  type        = number
  default     = 0
}

variable "function_max_instances" {
  description = "Maximum instances; bounds Redis connections (instances x pool size) and cost during a backlog."
  type        = number
  default     = 10
}

variable "function_cpu_idle" {
  description = "true = request-based billing (CPU only while a request runs); false = instance-based (CPU always on; cheaper once pushes arrive continuously, see docs/deploy.md)."
  type        = bool
  default     = false
}

variable "vpc_egress" {
  description = "\"direct\" = Direct VPC egress (no connector VMs to pay for), \"connector\" = Serverless VPC Access connector."
  type        = string
  default     = "direct"

  validation {
    condition     = contains(["direct", "connector"], var.vpc_egress)
    error_message = "vpc_egress is \"direct\" or \"connector\"."
  }
}

variable "connector_cidr" {
  description = "Unused /28 for the Serverless VPC Access connector (vpc_egress = \"connector\" only)."
  type        = string
  default     = "10.8.0.0/28"
}

variable "function_summary_interval" {
  description = "SUMMARY_INTERVAL: how often each instance logs one summary per table (the log-based metrics' resolution; shorter = more log entries)."
  type        = string
  default     = "60s"
}

variable "cache_prefix" {
  description = "CACHE_PREFIX for the function (key namespace); empty leaves the config file's prefix."
  type        = string
  default     = ""
}

variable "cache_config_yaml" {
  description = "Contents of the handler's CACHE_CONFIG YAML (tables, keys, TTLs, modes); empty = defaults for every table."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------- Pub/Sub delivery
variable "push_unwrapped" {
  description = "Push the raw Debezium JSON (no_wrapper, metadata as x-goog-pubsub-* headers) instead of the JSON envelope."
  type        = bool
  default     = false
}

variable "ack_deadline_seconds" {
  description = "Push ack deadline = Cloud Run request timeout: how long one apply may take before Pub/Sub retries."
  type        = number
  default     = 60
}

variable "retry_minimum_backoff" {
  description = "Pub/Sub retry policy: first redelivery delay after a 5xx."
  type        = string
  default     = "5s"
}

variable "retry_maximum_backoff" {
  description = "Pub/Sub retry policy: longest redelivery delay (max 600s)."
  type        = string
  default     = "300s"
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message goes to the dead-letter topic (5-100). With backoff up to 300s, 20 attempts is ~1.5 h of Redis trouble."
  type        = number
  default     = 20

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5 to 100 delivery attempts."
  }
}

variable "subscription_message_ordering" {
  description = "Deliver in publish order per key. Off by default: versions make order irrelevant and ordering stalls a key behind a failing message."
  type        = bool
  default     = false
}

variable "message_retention_duration" {
  description = "How long unacked messages are kept; the handler's tombstone_ttl must be at least this."
  type        = string
  default     = "604800s"
}

# ---------------------------------------------------------------- the cache
variable "cache" {
  description = "The cache the changes are applied to: redis (Memorystore for Redis, default) or memcached (memcache_addrs of your own memcached, or a Memorystore for Memcached instance, which Google is retiring: docs/deploy.md, \"memcached\")."
  type        = string
  default     = "redis"

  validation {
    condition     = contains(["redis", "memcached"], var.cache)
    error_message = "cache is redis or memcached."
  }
}

variable "memcache_addrs" {
  description = "cache = memcached: host:port of existing memcached nodes (run with -M, reachable from the subnet), e.g. on GKE or VMs; empty creates a Memorystore for Memcached instance."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.memcache_addrs : can(regex("^[^:,\\s]+:[0-9]+$", a))])
    error_message = "Each memcache_addrs entry is host:port."
  }
}

variable "memcache_node_count" {
  description = "Nodes of the Memorystore for Memcached instance (keys are spread over them by consistent hashing)."
  type        = number
  default     = 1
}

variable "memcache_node_cpu" {
  description = "vCPUs per Memorystore for Memcached node."
  type        = number
  default     = 1
}

variable "memcache_node_memory_mb" {
  description = "Memory per Memorystore for Memcached node in MiB; size for all cached rows + tombstones with headroom (evictions are disabled)."
  type        = number
  default     = 1024
}

# ---------------------------------------------------------------- Memorystore for Redis (cache = "redis")
variable "redis_tier" {
  description = "BASIC (no replica, data lost on restart) or STANDARD_HA (replica, failover)."
  type        = string
  default     = "STANDARD_HA"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier is BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GB; size for all cached rows + tombstones with headroom (noeviction)."
  type        = number
  default     = 1
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "redis_maxmemory_policy" {
  description = "Eviction policy. noeviction (default): a full cache rejects writes (alerted) instead of silently evicting versions/tombstones. See docs/deploy.md."
  type        = string
  default     = "noeviction"

  validation {
    condition     = contains(["noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-lru", "allkeys-lfu"], var.redis_maxmemory_policy)
    error_message = "Not a Memorystore maxmemory-policy."
  }
}

# ---------------------------------------------------------------- network
variable "network_name" {
  description = "Existing VPC to use (must reach Cloud SQL's private IP); empty creates one."
  type        = string
  default     = ""
}

variable "subnet_cidr" {
  description = "Range of the subnet created for the Debezium VM and Cloud Run Direct VPC egress (needs room for 2x max instances)."
  type        = string
  default     = "10.10.0.0/24"
}

variable "enable_iap_ssh" {
  description = "Allow SSH to the Debezium VM through IAP (no external IP) for operations."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- Cloud SQL
variable "cloudsql_create" {
  description = "true: create a MySQL 8 instance with binlog and private IP; false: use the existing cloudsql_instance_name."
  type        = bool
  default     = false
}

variable "cloudsql_instance_name" {
  description = "Cloud SQL instance name (existing, or to create)."
  type        = string
}

variable "cloudsql_tier" {
  description = "Machine tier when Terraform creates the instance."
  type        = string
  default     = "db-custom-1-3840"
}

variable "cloudsql_availability_type" {
  description = "REGIONAL (HA; failover keeps the binlog, so versions keep growing) or ZONAL, when created here."
  type        = string
  default     = "REGIONAL"
}

variable "binlog_retention_days" {
  description = "Binlog retention (transaction_log_retention_days, 1-7) when created here: the longest Debezium outage that resumes without a new snapshot."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Protect the Cloud SQL instance and Cloud Run service from terraform destroy."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- monitoring
variable "prometheus_metrics" {
  description = "Scrape the function's or worker's /metrics into Managed Service for Prometheus with a collector sidecar (metrics.tf): the dashboard and the commit-lag alert then use true fleet percentiles. false: logs-only (the summary log's per-instance percentiles, maxed across instances), no sidecar, no Prometheus samples billed."
  type        = bool
  default     = true
}

variable "metrics_scrape_interval" {
  description = "How often the sidecar scrapes /metrics. Every scrape sends ~460 samples per cached table per instance (four histograms of 113 series), billed per sample: 60s is ~20M samples a month per table and instance."
  type        = string
  default     = "60s"
}

variable "metrics_sidecar_limits" {
  description = "CPU and memory limits of the collector sidecar (e.g. { cpu = \"1\", memory = \"256Mi\" }); null leaves Cloud Run's defaults. Cloud Run bills the sum of the containers' allocations."
  type        = object({ cpu = string, memory = string })
  default     = null
}

variable "alert_email" {
  description = "E-mail notified by the alert policies; empty creates the policies without notification."
  type        = string
  default     = ""
}

variable "alert_backlog_age_seconds" {
  description = "Alert when the oldest unacked message of a push subscription is older than this."
  type        = number
  default     = 300
}

variable "alert_commit_lag_ms" {
  description = "Alert when the handler's p99 commit lag (MySQL commit -> Redis) stays above this for 10 minutes."
  type        = number
  default     = 60000
}

variable "alert_redis_memory_ratio" {
  description = "Alert when Redis memory use passes this fraction (noeviction rejects writes at 1.0)."
  type        = number
  default     = 0.8
}

# ---------------------------------------------------------------- delivery
variable "delivery" {
  description = "How changes reach the cache: push (Pub/Sub push to the Cloud Run function), pull (Pub/Sub streaming-pull worker) or kafka (Kafka consumer-group worker; Debezium publishes to Kafka)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull", "kafka"], var.delivery)
    error_message = "delivery is push, pull or kafka."
  }
}

# ---------------------------------------------------------------- worker (delivery = "pull" or "kafka")
variable "worker_image" {
  description = "Image of the worker (worker/cmd); null uses function_image, which holds /worker beside /function (function/Dockerfile)."
  type        = string
  default     = null
}

variable "worker_instances" {
  description = "Instances of the Cloud Run worker pool (manual scaling). Pull: each instance streams every subscription; Kafka: at most kafka_partitions instances share a topic's partitions, more stay idle."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_instances >= 1 && floor(var.worker_instances) == var.worker_instances
    error_message = "worker_instances is a whole number, at least 1."
  }
}

variable "worker_cpu" {
  description = "vCPU per worker instance (worker pools take 1, 2, 4, 6 or 8)."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.worker_cpu)
    error_message = "Cloud Run worker pools take 1, 2, 4, 6 or 8 vCPUs."
  }
}

variable "worker_memory" {
  description = "Memory per worker instance; PULL_MAX_OUTSTANDING messages (3-7 KB each in the full format) are held at once per subscription."
  type        = string
  default     = "512Mi"
}

variable "pull_max_outstanding" {
  description = "PULL_MAX_OUTSTANDING: messages received and not yet acknowledged, per subscription and instance (flow control)."
  type        = number
  default     = 5000
}

# ---------------------------------------------------------------- Kafka (delivery = "kafka")
variable "kafka_bootstrap" {
  description = "Bootstrap address (host:port, comma-separated) of an existing Kafka cluster; empty creates a Managed Service for Apache Kafka cluster in the VPC."
  type        = string
  default     = ""
}

variable "kafka_auth" {
  description = "How Debezium and the worker authenticate to Kafka: google (SASL/OAUTHBEARER with their service accounts over TLS: Managed Kafka) or none (plaintext, an existing cluster inside the VPC)."
  type        = string
  default     = "google"

  validation {
    condition     = contains(["google", "none"], var.kafka_auth)
    error_message = "kafka_auth is google or none."
  }
}

variable "kafka_vcpu_count" {
  description = "vCPUs of the Managed Kafka cluster (minimum 3; about 20 MB/s of writes per vCPU)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_vcpu_count >= 3
    error_message = "Managed Kafka needs at least 3 vCPUs."
  }
}

variable "kafka_memory_gib" {
  description = "Memory of the Managed Kafka cluster in GiB (1-8 GiB per vCPU)."
  type        = number
  default     = 3
}

variable "kafka_partitions" {
  description = "Partitions per table topic: the most worker instances that share one table's changes."
  type        = number
  default     = 6
}

variable "kafka_retention_hours" {
  description = "Retention of the table topics; keep it at or below the cache's tombstone_ttl (168h) so a replayed change is never older than the tombstones that stop it resurrecting a row."
  type        = number
  default     = 168
}

variable "alert_kafka_lag" {
  description = "Alert when a partition's consumer lag (records not yet applied) stays above this for 10 minutes."
  type        = number
  default     = 100000
}
