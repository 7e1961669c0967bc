// Package cost prices a cloudsql-cache deployment from list prices, the way
// each service bills: Pub/Sub by bytes per publish, push and pull request;
// Managed Service for Apache Kafka by provisioned cluster, storage and
// replication traffic; Cloud Run, Cloud Logging, Memorystore and the Debezium
// VM by time. It gives a monthly bill and the variable (marginal) cost per
// million change events. The prices live in prices.go, dated, with their
// sources.
package cost

import (
	"errors"
	"fmt"
	"math"
)

// Price is one list price in USD per its unit.
type Price struct {
	USD         float64
	Source      string // the pricing page's name
	Unconfirmed bool   // true: not found on the stored page; check before use
}

// Prices is the table of list prices an Estimate uses.
type Prices struct {
	ReadOn string // date the prices were read, YYYY-MM-DD

	PubSubPerTiB   Price
	PubSubFreeGiB  float64
	PubSubMinBytes float64 // billable minimum per publish, push or pull request

	RunRequestCPU          Price // per vCPU-second, request-based billing
	RunRequestMem          Price // per GiB-second, request-based billing
	RunRequestPerMillion   Price // per million requests, request-based billing
	RunRequestFreeVCPUSec  float64
	RunRequestFreeGiBSec   float64
	RunRequestFreeRequests float64

	RunInstanceCPU         Price // per vCPU-second, instance-based billing (and worker pools)
	RunInstanceMem         Price // per GiB-second, instance-based billing (and worker pools)
	RunInstanceFreeVCPUSec float64
	RunInstanceFreeGiBSec  float64

	KafkaVCPUHour         Price // Managed Kafka compute, per vCPU-hour
	KafkaGiBHour          Price // Managed Kafka compute, per GiB of RAM-hour
	KafkaLocalGiBMonth    Price // broker local storage, per GiB-month
	KafkaLocalGiBPerVCPU  float64
	KafkaPersistGiBMonth  Price // retained data (one replica), per GiB-month
	KafkaInterZonePerGiB  Price // replication traffic between zones, per GiB
	KafkaMinVCPU          float64
	KafkaMinGiBPerVCPU    float64
	KafkaPublishMiBPerCPU float64 // what one vCPU carries of producer traffic
	KafkaConsumeMiBPerCPU float64 // and of consumer traffic

	LoggingPerGiB  Price
	LoggingFreeGiB float64

	RedisBasicGBHour    Price
	RedisStandardGBHour Price

	VMHour map[string]Price // by machine type
}

// Deployment shape assumed by every estimate.
const (
	// HoursPerMonth is the month Google's pricing pages use.
	HoursPerMonth = 730
	// TargetCPUUtilization is where Cloud Run's autoscaler keeps instances
	// (its default scaling target), so billed instance time is CPU time / 0.6.
	TargetCPUUtilization = 0.6
	// InstanceVCPU and InstanceMemGiB size one function or worker instance.
	InstanceVCPU   = 1.0
	InstanceMemGiB = 0.5
	// MinInstances: a steady stream keeps at least one instance busy all
	// month. Above ~50 events/s every 100 ms billing window of that instance
	// holds a request, so request-based billing bills its whole lifetime too.
	MinInstances = 1.0
	// RequestLogBytes estimates one Cloud Run request log entry (the
	// HttpRequest record with resource labels and trace): unconfirmed.
	RequestLogBytes = 1024.0
	// KafkaReplicas is Managed Kafka's default replication factor, one
	// replica a zone; KafkaTargetUtilization the planning guide's baseline.
	KafkaReplicas          = 3.0
	KafkaTargetUtilization = 0.5
)

// Format is the message format (debezium-server/'s profiles).
type Format string

// The formats.
const (
	Full    Format = "full"    // schema envelopes, Pub/Sub ordering on
	Compact Format = "compact" // flattened schemaless rows, ordering off, batched publishes
)

// Delivery is how changes reach the apply core.
type Delivery string

// The deliveries.
const (
	Push  Delivery = "push"  // Pub/Sub push subscription -> Cloud Run service, one request a change
	Pull  Delivery = "pull"  // Pub/Sub streaming pull -> Cloud Run worker pool
	Kafka Delivery = "kafka" // Managed Service for Apache Kafka -> Cloud Run worker pool
)

// Billing is Cloud Run's billing setting for the push function.
type Billing string

// Cloud Run billing settings.
const (
	RequestBilling  Billing = "request"
	InstanceBilling Billing = "instance"
)

// RedisTier is the Memorystore for Redis service tier.
type RedisTier string

// Memorystore tiers.
const (
	RedisBasic    RedisTier = "basic"
	RedisStandard RedisTier = "standard"
)

// Publisher is how Debezium Server batches changes into Pub/Sub publish
// requests: its engine hands the sink a batch of changes (at most
// MaxBatchSize, or what arrived while it waited PollMs), the sink publishes
// them through one Java publisher per topic and waits for every
// confirmation. Without ordering a publisher packs up to ElementCount
// messages or ByteThreshold bytes into a request and sends the rest after
// DelayMs; with ordering it keeps a batch per ordering key, so distinct rows
// go one message a request.
type Publisher struct {
	Ordering      bool
	MaxBatchSize  float64 // debezium.source.max.batch.size
	PollMs        float64 // debezium.source.poll.interval.ms
	ElementCount  float64 // debezium.sink.pubsub.batch.element.count.threshold
	ByteThreshold float64 // debezium.sink.pubsub.batch.request.byte.threshold
	DelayMs       float64 // debezium.sink.pubsub.batch.delay.threshold.ms
	RoundTripMs   float64 // one publish round trip (assumed)
	Topics        float64 // tables the changes spread over evenly, one topic each
}

// The compact profile's publisher settings, as in
// debezium-server/application.properties (a test holds them equal).
const (
	CompactMaxBatchSize  = 8192
	CompactPollMs        = 100
	CompactElementCount  = 1000
	CompactByteThreshold = 9000000
	CompactDelayMs       = 50
	// PublishRoundTripMs is a publish's round trip within a region: an
	// assumption, not a measurement.
	PublishRoundTripMs = 30
)

// ProfilePublisher returns the publisher settings of a format's profile,
// over topics tables. The full profile keeps Debezium's defaults with
// ordering on.
func ProfilePublisher(f Format, topics float64) Publisher {
	if f == Full {
		return Publisher{Ordering: true, MaxBatchSize: 2048, PollMs: 500, ElementCount: 100,
			ByteThreshold: 9500000, DelayMs: 100, RoundTripMs: PublishRoundTripMs, Topics: topics}
	}
	return Publisher{MaxBatchSize: CompactMaxBatchSize, PollMs: CompactPollMs, ElementCount: CompactElementCount,
		ByteThreshold: CompactByteThreshold, DelayMs: CompactDelayMs, RoundTripMs: PublishRoundTripMs, Topics: topics}
}

// MessagesPerRequest is how many messages one publish request carries at
// eventsPerHour changes of msgBytes each: one with ordering; else a topic's
// share of one engine batch (what arrives in a poll, publisher delay and
// round trip), capped by the request limits.
func (p Publisher) MessagesPerRequest(eventsPerHour, msgBytes float64) float64 {
	if p.Ordering {
		return 1
	}
	cycle := (p.PollMs + p.DelayMs + p.RoundTripMs) / 1000
	batch := math.Min(p.MaxBatchSize, eventsPerHour/3600*cycle)
	n := math.Min(batch/math.Max(1, p.Topics), math.Min(p.ElementCount, math.Floor(p.ByteThreshold/msgBytes)))
	return math.Max(1, n)
}

// Inputs describe the workload and the deployment choices.
type Inputs struct {
	EventsPerHour     float64
	Format            Format
	Delivery          Delivery
	AvgBytes          float64 // Pub/Sub billable bytes of one message (MessageBytes)
	BytesFrom         string  // where AvgBytes comes from, for the heading
	CPUMicrosPerEvent float64 // the function's or worker's CPU per event
	Publisher         Publisher
	Billing           Billing // push function only; workers are billed by instance
	RequestLogs       bool    // push only; false: request logs excluded by a sink exclusion
	RedisTier         RedisTier
	RedisGB           float64
	VM                string  // Debezium VM machine type
	KafkaVCPU         float64 // Managed Kafka cluster vCPUs; 0: the smallest that carries the load
	KafkaGiB          float64 // its RAM; 0: KafkaMinGiBPerVCPU a vCPU
	RetentionHours    float64 // Kafka topic retention
}

// MessageBytes is what Pub/Sub bills for one message ("Pub/Sub pricing",
// data volume of a message): the data, each attribute's key and value, the
// ordering key, 20 bytes of publish timestamp and the message ID.
func MessageBytes(data int, attrs map[string]string, orderingKey string) int {
	n := data + len(orderingKey) + 20 + MessageIDBytes
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}

// MessageIDBytes is the length of a Pub/Sub message ID: a decimal number of
// 16-17 digits in every ID seen; 17 is counted.
const MessageIDBytes = 17

// LineItem is one line of the bill.
type LineItem struct {
	Name        string
	Quantity    string  // billable quantity a month, human readable
	Monthly     float64 // USD a month, after free tiers
	PerMillion  float64 // variable USD per million events: marginal, without free tiers
	Unconfirmed bool    // uses a price marked unconfirmed
}

// Estimate is a monthly bill.
type Estimate struct {
	Inputs       Inputs
	EventsMonth  float64
	PerRequest   float64 // messages per Pub/Sub publish request (0 for Kafka)
	Items        []LineItem
	Monthly      float64 // total USD a month
	PerMillion   float64 // all-in USD per million events: Monthly / millions of events
	VariablePerM float64 // sum of the items' PerMillion
}

// Validate reports the first unusable input.
func (in Inputs) Validate(p Prices) error {
	switch {
	case !(in.EventsPerHour > 0) || math.IsInf(in.EventsPerHour, 0):
		return errors.New("events per hour must be a positive number")
	case in.Format != Full && in.Format != Compact:
		return fmt.Errorf("format %q: want full or compact", in.Format)
	case in.Delivery != Push && in.Delivery != Pull && in.Delivery != Kafka:
		return fmt.Errorf("delivery %q: want push, pull or kafka", in.Delivery)
	case !(in.AvgBytes > 0) || in.AvgBytes > 10<<20:
		return errors.New("average message bytes must be between 1 and 10 MiB (Pub/Sub's limit)")
	case !(in.CPUMicrosPerEvent >= 0) || math.IsInf(in.CPUMicrosPerEvent, 0):
		return errors.New("CPU µs per event must be zero or more")
	case !(in.Publisher.Topics >= 1) || math.IsInf(in.Publisher.Topics, 0):
		return errors.New("tables must be 1 or more")
	case in.Billing != RequestBilling && in.Billing != InstanceBilling:
		return fmt.Errorf("billing %q: want request or instance", in.Billing)
	case in.RedisTier != RedisBasic && in.RedisTier != RedisStandard:
		return fmt.Errorf("redis tier %q: want basic or standard", in.RedisTier)
	case !(in.RedisGB >= 1) || in.RedisGB > 300:
		return errors.New("redis size must be 1 to 300 GB")
	case in.KafkaVCPU != 0 && !(in.KafkaVCPU >= p.KafkaMinVCPU):
		return fmt.Errorf("a Managed Kafka cluster has at least %g vCPUs", p.KafkaMinVCPU)
	case in.KafkaGiB != 0 && in.KafkaVCPU == 0:
		return errors.New("kafka RAM needs the vCPUs too")
	case in.KafkaGiB != 0 && (in.KafkaGiB < in.KafkaVCPU || in.KafkaGiB > 8*in.KafkaVCPU):
		return errors.New("kafka RAM must be 1 to 8 GiB a vCPU")
	case !(in.RetentionHours >= 0) || in.RetentionHours > 24*365:
		return errors.New("retention must be 0 to 8760 hours")
	}
	if _, ok := p.VMHour[in.VM]; !ok {
		return fmt.Errorf("VM machine type %q has no price in the table", in.VM)
	}
	return nil
}

const (
	gib = 1 << 30
	tib = 1 << 40
)

// Compute prices in against p.
func Compute(in Inputs, p Prices) (Estimate, error) {
	if err := in.Validate(p); err != nil {
		return Estimate{}, err
	}
	events := in.EventsPerHour * HoursPerMonth
	e := Estimate{Inputs: in, EventsMonth: events}
	if in.Delivery == Kafka {
		e.kafka(p)
	} else {
		e.pubsub(p)
	}
	e.cloudRun(p)
	e.fixed(p)
	e.PerMillion = e.Monthly / (events / 1e6)
	return e, nil
}

// billedPerMessage is the bytes billed per message when n messages of size
// share one request: the request is billed at least the minimum.
func billedPerMessage(size, n, minBytes float64) float64 {
	return math.Max(minBytes, n*size) / n
}

// pubsub adds publish and delivery. The free tier applies to their sum.
func (e *Estimate) pubsub(p Prices) {
	in := e.Inputs
	n := in.Publisher.MessagesPerRequest(in.EventsPerHour, in.AvgBytes)
	e.PerRequest = n
	pub := billedPerMessage(in.AvgBytes, n, p.PubSubMinBytes)
	// Push: each delivery is its own request. Streaming pull: a response
	// is assumed to carry what one publish request did (a backlog makes it
	// carry more, never fewer than one).
	del, how := billedPerMessage(in.AvgBytes, 1, p.PubSubMinBytes), "push, one message a request"
	if in.Delivery == Pull {
		del, how = pub, fmt.Sprintf("streaming pull, %s a response", messages(n))
	}
	free := p.PubSubFreeGiB * gib
	pubBytes, delBytes := e.EventsMonth*pub, e.EventsMonth*del
	pubFree := math.Min(pubBytes, free)
	delFree := math.Min(delBytes, free-pubFree)
	e.add(LineItem{
		Name:        fmt.Sprintf("Pub/Sub publish (%s a request, %s B billed each)", messages(n), num(pub, 0)),
		Quantity:    fmt.Sprintf("%s TiB", num(pubBytes/tib, 3)),
		Monthly:     (pubBytes - pubFree) / tib * p.PubSubPerTiB.USD,
		PerMillion:  1e6 * pub / tib * p.PubSubPerTiB.USD,
		Unconfirmed: p.PubSubPerTiB.Unconfirmed,
	})
	e.add(LineItem{
		Name:        fmt.Sprintf("Pub/Sub delivery (%s, %s B billed each)", how, num(del, 0)),
		Quantity:    fmt.Sprintf("%s TiB", num(delBytes/tib, 3)),
		Monthly:     (delBytes - delFree) / tib * p.PubSubPerTiB.USD,
		PerMillion:  1e6 * del / tib * p.PubSubPerTiB.USD,
		Unconfirmed: p.PubSubPerTiB.Unconfirmed,
	})
}

// messages says "1 message" or "N messages".
func messages(n float64) string {
	if s := num(n, 0); s != "1" {
		return s + " messages"
	}
	return "1 message"
}

// KafkaSize returns the cluster a load needs: vCPUs for the producer and
// consumer traffic at the target utilisation ("Plan the size of your
// cluster"), at least the minimum, and RAM at the minimum ratio.
func KafkaSize(in Inputs, p Prices) (vcpu, ram float64) {
	if in.KafkaVCPU > 0 {
		vcpu, ram = in.KafkaVCPU, in.KafkaGiB
	} else {
		mibps := in.EventsPerHour / 3600 * in.AvgBytes / (1 << 20)
		need := (mibps/p.KafkaPublishMiBPerCPU + mibps/p.KafkaConsumeMiBPerCPU) / KafkaTargetUtilization
		vcpu = math.Max(p.KafkaMinVCPU, math.Ceil(need))
	}
	if ram == 0 {
		ram = vcpu * p.KafkaMinGiBPerVCPU
	}
	return vcpu, ram
}

// kafka adds the Managed Kafka cluster: compute and local storage are
// provisioned (fixed for a size); retained data and replication traffic
// grow with the bytes.
func (e *Estimate) kafka(p Prices) {
	in := e.Inputs
	vcpu, ram := KafkaSize(in, p)
	e.add(LineItem{
		Name:        fmt.Sprintf("Managed Kafka compute (%s vCPU, %s GiB)", num(vcpu, 0), num(ram, 0)),
		Quantity:    fmt.Sprintf("%s vCPU-h + %s GiB-h", num(vcpu*HoursPerMonth, 0), num(ram*HoursPerMonth, 0)),
		Monthly:     HoursPerMonth * (vcpu*p.KafkaVCPUHour.USD + ram*p.KafkaGiBHour.USD),
		Unconfirmed: p.KafkaVCPUHour.Unconfirmed || p.KafkaGiBHour.Unconfirmed,
	})
	local := vcpu * p.KafkaLocalGiBPerVCPU
	e.add(LineItem{
		Name:        "Managed Kafka local storage (provisioned with the vCPUs)",
		Quantity:    fmt.Sprintf("%s GiB-month", num(local, 0)),
		Monthly:     local * p.KafkaLocalGiBMonth.USD,
		Unconfirmed: p.KafkaLocalGiBMonth.Unconfirmed,
	})
	// Retained data: one replica is billed; a month of events held for
	// RetentionHours averages events/h × retention in store.
	held := in.EventsPerHour * in.RetentionHours * in.AvgBytes / gib
	e.add(LineItem{
		Name:        fmt.Sprintf("Managed Kafka persistent storage (%s h retention)", num(in.RetentionHours, 0)),
		Quantity:    fmt.Sprintf("%s GiB-month", num(held, 1)),
		Monthly:     held * p.KafkaPersistGiBMonth.USD,
		PerMillion:  1e6 * in.AvgBytes * in.RetentionHours / HoursPerMonth / gib * p.KafkaPersistGiBMonth.USD,
		Unconfirmed: p.KafkaPersistGiBMonth.Unconfirmed,
	})
	// Replication to the other zones' replicas; consumers read their own
	// zone's replica (follower fetching), so they add none.
	repl := (KafkaReplicas - 1) * in.AvgBytes
	e.add(LineItem{
		Name:        "Managed Kafka inter-zone replication",
		Quantity:    fmt.Sprintf("%s GiB", num(e.EventsMonth*repl/gib, 0)),
		Monthly:     e.EventsMonth * repl / gib * p.KafkaInterZonePerGiB.USD,
		PerMillion:  1e6 * repl / gib * p.KafkaInterZonePerGiB.USD,
		Unconfirmed: p.KafkaInterZonePerGiB.Unconfirmed,
	})
}

// cloudRun adds the push function (request or instance billing) or the
// worker pool (always instance billing). Instance time = CPU time / target
// utilisation, at least MinInstances for the whole month.
func (e *Estimate) cloudRun(p Prices) {
	in := e.Inputs
	billing, what := in.Billing, "Cloud Run function"
	if in.Delivery != Push {
		billing, what = InstanceBilling, "Cloud Run worker pool"
	}
	cpuPerSec := in.EventsPerHour / 3600 * in.CPUMicrosPerEvent / 1e6
	instances := math.Max(MinInstances, cpuPerSec/TargetCPUUtilization/InstanceVCPU)
	instSec := instances * HoursPerMonth * 3600
	vcpuSec, gibSec := instSec*InstanceVCPU, instSec*InstanceMemGiB
	varInstSecPerM := in.CPUMicrosPerEvent / TargetCPUUtilization / InstanceVCPU
	cpuPrice, memPrice := p.RunInstanceCPU, p.RunInstanceMem
	freeCPU, freeMem := p.RunInstanceFreeVCPUSec, p.RunInstanceFreeGiBSec
	if billing == RequestBilling {
		cpuPrice, memPrice = p.RunRequestCPU, p.RunRequestMem
		freeCPU, freeMem = p.RunRequestFreeVCPUSec, p.RunRequestFreeGiBSec
	}
	billedCPU, billedMem := math.Max(0, vcpuSec-freeCPU), math.Max(0, gibSec-freeMem)
	e.add(LineItem{
		Name:        fmt.Sprintf("%s CPU (%s billing, %s instances)", what, billing, num(instances, 2)),
		Quantity:    fmt.Sprintf("%s vCPU-s", num(billedCPU, 0)),
		Monthly:     billedCPU * cpuPrice.USD,
		PerMillion:  varInstSecPerM * InstanceVCPU * cpuPrice.USD,
		Unconfirmed: cpuPrice.Unconfirmed,
	})
	e.add(LineItem{
		Name:        what + " memory",
		Quantity:    fmt.Sprintf("%s GiB-s", num(billedMem, 0)),
		Monthly:     billedMem * memPrice.USD,
		PerMillion:  varInstSecPerM * InstanceMemGiB * memPrice.USD,
		Unconfirmed: memPrice.Unconfirmed,
	})
	if in.Delivery != Push {
		return
	}
	if billing == RequestBilling {
		req := math.Max(0, e.EventsMonth-p.RunRequestFreeRequests)
		e.add(LineItem{
			Name:        "Cloud Run requests",
			Quantity:    fmt.Sprintf("%s M requests", num(req/1e6, 1)),
			Monthly:     req / 1e6 * p.RunRequestPerMillion.USD,
			PerMillion:  p.RunRequestPerMillion.USD,
			Unconfirmed: p.RunRequestPerMillion.Unconfirmed,
		})
	}
	if in.RequestLogs {
		logGiB := math.Max(0, e.EventsMonth*RequestLogBytes/gib-p.LoggingFreeGiB)
		e.add(LineItem{
			Name:        "Cloud Logging: Cloud Run request logs (~1 KiB each, estimate)",
			Quantity:    fmt.Sprintf("%s GiB", num(logGiB, 1)),
			Monthly:     logGiB * p.LoggingPerGiB.USD,
			PerMillion:  1e6 * RequestLogBytes / gib * p.LoggingPerGiB.USD,
			Unconfirmed: true, // the entry size is an estimate
		})
	} else {
		e.add(LineItem{Name: "Cloud Logging: request logs excluded", Quantity: "0 GiB"})
	}
}

// fixed adds Memorystore and the Debezium VM.
func (e *Estimate) fixed(p Prices) {
	in := e.Inputs
	redis := p.RedisStandardGBHour
	if in.RedisTier == RedisBasic {
		redis = p.RedisBasicGBHour
	}
	e.add(LineItem{
		Name:        fmt.Sprintf("Memorystore for Redis, %s tier", in.RedisTier),
		Quantity:    fmt.Sprintf("%s GB x %d h", num(in.RedisGB, 0), HoursPerMonth),
		Monthly:     in.RedisGB * HoursPerMonth * redis.USD,
		Unconfirmed: redis.Unconfirmed,
	})
	vm := p.VMHour[in.VM]
	e.add(LineItem{
		Name:        fmt.Sprintf("Debezium VM, %s on demand", in.VM),
		Quantity:    fmt.Sprintf("%d h", HoursPerMonth),
		Monthly:     HoursPerMonth * vm.USD,
		Unconfirmed: vm.Unconfirmed,
	})
}

func (e *Estimate) add(li LineItem) {
	e.Items = append(e.Items, li)
	e.Monthly += li.Monthly
	e.VariablePerM += li.PerMillion
}
