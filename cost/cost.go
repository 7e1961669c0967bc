// Package cost prices a cloudsql-cache deployment from list prices: Pub/Sub
// throughput, the Cloud Run push function, Cloud Logging, Memorystore and the
// Debezium VM, as a monthly bill and as a cost per million change events.
// The prices live in prices.go, dated, with their sources.
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

	RunInstanceCPU         Price // per vCPU-second, instance-based billing
	RunInstanceMem         Price // per GiB-second, instance-based billing
	RunInstanceFreeVCPUSec float64
	RunInstanceFreeGiBSec  float64

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
	// InstanceVCPU and InstanceMemGiB size one function instance.
	InstanceVCPU   = 1.0
	InstanceMemGiB = 0.5
	// MinInstances: a steady stream keeps at least one instance busy all
	// month. Above ~50 events/s every 100 ms billing window of that instance
	// holds a request, so request-based billing bills its whole lifetime too.
	MinInstances = 1.0
	// RequestLogBytes estimates one Cloud Run request log entry (the
	// HttpRequest record with resource labels and trace): unconfirmed.
	RequestLogBytes = 1024.0

	// DefaultCPUMicrosPerEvent is the function's CPU per schema-enveloped
	// event at concurrency 50, measured by `make bench` (bench/cmd/bench) on
	// 2026-11-25 on the shared 2-core development machine with the handler's
	// one-pass envelope scanner: 68-78 µs over four runs (schemaless events:
	// 43-46 µs). At low concurrency it is higher (c=1: 176-193 µs; open loop
	// at 5,000/s: 87-156 µs): fewer events share each wake-up and syscall.
	DefaultCPUMicrosPerEvent = 70.0
	// DefaultAvgBytes is the billable Pub/Sub volume of one schema-enveloped
	// change event of the benchmark's 18-column table: 6,238 bytes of data
	// (an update carries the before and after images and the schema of both)
	// plus ~60 bytes of message id, timestamp and ordering key. Schemaless,
	// the same events are ~1,200 bytes.
	DefaultAvgBytes = 6300
)

// Billing is Cloud Run's billing setting.
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

// Inputs describe the workload and the deployment choices.
type Inputs struct {
	EventsPerHour     float64
	AvgBytes          float64 // billable Pub/Sub volume of one message: data + attributes + ~40 B of id and timestamp
	CPUMicrosPerEvent float64 // the function's CPU per event
	Billing           Billing
	RequestLogs       bool // false: Cloud Run request logs excluded by a log sink exclusion
	RedisTier         RedisTier
	RedisGB           float64
	VM                string // Debezium VM machine type
}

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
	case !(in.AvgBytes > 0) || in.AvgBytes > 10<<20:
		return errors.New("average message bytes must be between 1 and 10 MiB (Pub/Sub's limit)")
	case !(in.CPUMicrosPerEvent >= 0) || math.IsInf(in.CPUMicrosPerEvent, 0):
		return errors.New("CPU µs per event must be zero or more")
	case in.Billing != RequestBilling && in.Billing != InstanceBilling:
		return fmt.Errorf("billing %q: want request or instance", in.Billing)
	case in.RedisTier != RedisBasic && in.RedisTier != RedisStandard:
		return fmt.Errorf("redis tier %q: want basic or standard", in.RedisTier)
	case !(in.RedisGB >= 1) || in.RedisGB > 300:
		return errors.New("redis size must be 1 to 300 GB")
	}
	if _, ok := p.VMHour[in.VM]; !ok {
		return fmt.Errorf("VM machine type %q has no price in the table", in.VM)
	}
	return nil
}

// Compute prices in against p.
func Compute(in Inputs, p Prices) (Estimate, error) {
	if err := in.Validate(p); err != nil {
		return Estimate{}, err
	}
	const gib = 1 << 30
	events := in.EventsPerHour * HoursPerMonth
	e := Estimate{Inputs: in, EventsMonth: events}

	// Pub/Sub: the message is billed once on publish and once on push
	// delivery, each at least PubSubMinBytes (one message per request).
	billable := math.Max(in.AvgBytes, p.PubSubMinBytes)
	psGiB := 2 * events * billable / gib
	psTiB := math.Max(0, psGiB-p.PubSubFreeGiB) / 1024
	e.add(LineItem{
		Name:        "Pub/Sub publish + push delivery",
		Quantity:    fmt.Sprintf("%s TiB", num(psTiB, 3)),
		Monthly:     psTiB * p.PubSubPerTiB.USD,
		PerMillion:  2 * 1e6 * billable / (1 << 40) * p.PubSubPerTiB.USD,
		Unconfirmed: p.PubSubPerTiB.Unconfirmed,
	})

	// Cloud Run: instance time = CPU time / target utilisation, at least
	// MinInstances for the whole month.
	cpuPerSec := in.EventsPerHour / 3600 * in.CPUMicrosPerEvent / 1e6
	instances := math.Max(MinInstances, cpuPerSec/TargetCPUUtilization/InstanceVCPU)
	instSec := instances * HoursPerMonth * 3600
	vcpuSec, gibSec := instSec*InstanceVCPU, instSec*InstanceMemGiB
	varInstSecPerM := 1e6 * in.CPUMicrosPerEvent / 1e6 / TargetCPUUtilization / InstanceVCPU
	cpuPrice, memPrice := p.RunInstanceCPU, p.RunInstanceMem
	freeCPU, freeMem := p.RunInstanceFreeVCPUSec, p.RunInstanceFreeGiBSec
	if in.Billing == RequestBilling {
		cpuPrice, memPrice = p.RunRequestCPU, p.RunRequestMem
		freeCPU, freeMem = p.RunRequestFreeVCPUSec, p.RunRequestFreeGiBSec
	}
	billedCPU, billedMem := math.Max(0, vcpuSec-freeCPU), math.Max(0, gibSec-freeMem)
	e.add(LineItem{
		Name:        fmt.Sprintf("Cloud Run CPU (%s billing, %s instances)", in.Billing, num(instances, 2)),
		Quantity:    fmt.Sprintf("%s vCPU-s", num(billedCPU, 0)),
		Monthly:     billedCPU * cpuPrice.USD,
		PerMillion:  varInstSecPerM * InstanceVCPU * cpuPrice.USD,
		Unconfirmed: cpuPrice.Unconfirmed,
	})
	e.add(LineItem{
		Name:        "Cloud Run memory",
		Quantity:    fmt.Sprintf("%s GiB-s", num(billedMem, 0)),
		Monthly:     billedMem * memPrice.USD,
		PerMillion:  varInstSecPerM * InstanceMemGiB * memPrice.USD,
		Unconfirmed: memPrice.Unconfirmed,
	})
	if in.Billing == RequestBilling {
		req := math.Max(0, events-p.RunRequestFreeRequests)
		e.add(LineItem{
			Name:        "Cloud Run requests",
			Quantity:    fmt.Sprintf("%s M requests", num(req/1e6, 1)),
			Monthly:     req / 1e6 * p.RunRequestPerMillion.USD,
			PerMillion:  p.RunRequestPerMillion.USD,
			Unconfirmed: p.RunRequestPerMillion.Unconfirmed,
		})
	}

	if in.RequestLogs {
		logGiB := math.Max(0, events*RequestLogBytes/gib-p.LoggingFreeGiB)
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
	e.PerMillion = e.Monthly / (events / 1e6)
	return e, nil
}

func (e *Estimate) add(li LineItem) {
	e.Items = append(e.Items, li)
	e.Monthly += li.Monthly
	e.VariablePerM += li.PerMillion
}
