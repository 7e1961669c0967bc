package cost

// ListPrices holds every list price the estimate uses: Google Cloud,
// us-central1 (Cloud Run tier 1), USD, on-demand, without committed-use or
// sustained-use discounts. This is the only place prices live.
//
// Read on 2026-11-25 (Managed Kafka and the Pub/Sub message size on
// 2026-12-03) from stored copies of these pages (no live web access when
// they were read; the copies' own dates vary):
//   - "Pub/Sub pricing" (cloud.google.com/pubsub/pricing)
//   - "Cloud Run pricing" (cloud.google.com/run/pricing) and "Billing settings
//     (services)" (cloud.google.com/run/docs/configuring/billing-settings)
//   - "Google Cloud Observability pricing" (cloud.google.com/stackdriver/pricing)
//   - "Memorystore for Redis pricing" (cloud.google.com/memorystore/docs/redis/pricing)
//   - "VM instance pricing" (cloud.google.com/compute/vm-instance-pricing)
//   - "Google Cloud Managed Service for Apache Kafka pricing"
//     (cloud.google.com/managed-service-for-apache-kafka/pricing) and "Plan
//     the size of your Managed Service for Apache Kafka cluster"
//     (.../managed-service-for-apache-kafka/docs/plan-cluster-size)
//
// A price marked Unconfirmed was not found on a stored copy of the vendor's
// page: it is the figure last known to the author and must be checked before
// it is relied on.
var ListPrices = Prices{
	ReadOn: "2026-12-03",

	// "Pub/Sub pricing": throughput (publish, and delivery by pull, streaming
	// pull or push) $40 per TiB, first 10 GiB a month free; "a minimum of 1000
	// bytes per publish, push or pull request is assessed regardless of
	// message size". A push request carries one message. A message's data
	// volume is its data, each attribute's key and value, 20 bytes for the
	// timestamp and the message_id string (MessageBytes).
	PubSubPerTiB:   Price{USD: 40, Source: "Pub/Sub pricing"},
	PubSubFreeGiB:  10,
	PubSubMinBytes: 1000,

	// "Cloud Run pricing", tier 1, request-based billing ("CPU only allocated
	// during request processing"): $0.00002400 per vCPU-second,
	// $0.00000250 per GiB-second, $0.40 per million requests; free per
	// month: 180,000 vCPU-seconds, 360,000 GiB-seconds, 2 million requests.
	RunRequestCPU:          Price{USD: 0.000024, Source: "Cloud Run pricing"},
	RunRequestMem:          Price{USD: 0.0000025, Source: "Cloud Run pricing"},
	RunRequestPerMillion:   Price{USD: 0.40, Source: "Cloud Run pricing"},
	RunRequestFreeVCPUSec:  180000,
	RunRequestFreeGiBSec:   360000,
	RunRequestFreeRequests: 2000000,

	// Instance-based billing ("CPU always allocated"), which the pull and
	// Kafka worker pools are assumed to pay too: $0.00001800 per
	// vCPU-second is on the page; the memory rate was not on the stored
	// copy. No per-request fee. Free tier 240,000 vCPU-seconds and 450,000
	// GiB-seconds (seen only on a secondary page quoting the pricing page).
	RunInstanceCPU:         Price{USD: 0.000018, Source: "Cloud Run pricing"},
	RunInstanceMem:         Price{USD: 0.000002, Source: "Cloud Run pricing", Unconfirmed: true},
	RunInstanceFreeVCPUSec: 240000,
	RunInstanceFreeGiBSec:  450000,

	// "Managed Service for Apache Kafka pricing": compute in Data Compute
	// Units at $0.09 per DCU-hour (us-central1), 1 vCPU = 0.6 DCU and 1 GiB
	// of RAM = 0.1 DCU, so $0.054 per vCPU-hour and $0.009 per GiB-hour;
	// "expect to pay for 100GB of local storage for every vCPU"; persistent
	// storage billed for one replica of the data retained. The storage and
	// inter-zone rates were not on the stored copy. "Plan the size...": at
	// least 3 vCPUs and 1-8 GiB a vCPU; the pricing page's rough guide: one
	// vCPU carries 20 MiB/s of publish and 80 MiB/s of consumer traffic.
	KafkaVCPUHour:         Price{USD: 0.054, Source: "Managed Service for Apache Kafka pricing"},
	KafkaGiBHour:          Price{USD: 0.009, Source: "Managed Service for Apache Kafka pricing"},
	KafkaLocalGiBMonth:    Price{USD: 0.17, Source: "Managed Service for Apache Kafka pricing", Unconfirmed: true},
	KafkaLocalGiBPerVCPU:  100,
	KafkaPersistGiBMonth:  Price{USD: 0.10, Source: "Managed Service for Apache Kafka pricing", Unconfirmed: true},
	KafkaInterZonePerGiB:  Price{USD: 0.01, Source: "Managed Service for Apache Kafka pricing", Unconfirmed: true},
	KafkaMinVCPU:          3,
	KafkaMinGiBPerVCPU:    1,
	KafkaPublishMiBPerCPU: 20,
	KafkaConsumeMiBPerCPU: 80,

	// "Google Cloud Observability pricing": logging storage $0.50/GiB, first
	// 50 GiB per project a month free (includes 30 days' retention).
	LoggingPerGiB:  Price{USD: 0.50, Source: "Google Cloud Observability pricing"},
	LoggingFreeGiB: 50,

	// Memorystore for Redis, M1 capacity tier (1-4 GB), per GB-hour. The
	// stored copies had the tier descriptions but not the price table.
	RedisBasicGBHour:    Price{USD: 0.049, Source: "Memorystore for Redis pricing", Unconfirmed: true},
	RedisStandardGBHour: Price{USD: 0.064, Source: "Memorystore for Redis pricing", Unconfirmed: true},

	// Compute Engine on-demand, Linux, per hour, for the Debezium VM. No
	// trustworthy stored copy of the price table was found.
	VMHour: map[string]Price{
		"e2-small":  {USD: 0.016751, Source: "VM instance pricing", Unconfirmed: true},
		"e2-medium": {USD: 0.033503, Source: "VM instance pricing", Unconfirmed: true},
	},
}
