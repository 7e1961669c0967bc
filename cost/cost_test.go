package cost

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func base() Inputs {
	return Inputs{EventsPerHour: 1e6, Format: Full, Delivery: Push, AvgBytes: 1000, CPUMicrosPerEvent: 40,
		Publisher: ProfilePublisher(Full, 1), Billing: InstanceBilling,
		RedisTier: RedisStandard, RedisGB: 1, VM: "e2-small", RetentionHours: 24}
}

func compact(delivery Delivery) Inputs {
	in := base()
	in.Format, in.Delivery, in.Publisher = Compact, delivery, ProfilePublisher(Compact, 1)
	return in
}

func item(t *testing.T, e Estimate, prefix string) LineItem {
	t.Helper()
	for _, li := range e.Items {
		if strings.HasPrefix(li.Name, prefix) {
			return li
		}
	}
	t.Fatalf("no line item %q in %+v", prefix, e.Items)
	return LineItem{}
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.10g, want %.10g", what, got, want)
	}
}

// The 1000-byte minimum, billed on publish and on push delivery, one
// message a request (ordering on): 2 × 1000 B × 1e6 / 2^40 B/TiB × $40/TiB
// ≈ $0.0728 per million messages.
func TestPubSubMinimumPerMessage(t *testing.T) {
	in := base()
	in.AvgBytes = 300 // below the minimum: billed as 1000
	e, err := Compute(in, ListPrices)
	if err != nil {
		t.Fatal(err)
	}
	pub, del := item(t, e, "Pub/Sub publish"), item(t, e, "Pub/Sub delivery")
	near(t, "messages a request", e.PerRequest, 1)
	near(t, "publish per million", pub.PerMillion, 1000*1e6/math.Pow(2, 40)*40)
	near(t, "delivery per million", del.PerMillion, 1000*1e6/math.Pow(2, 40)*40)
	// 730 M messages × 2 × 1000 B, less 10 GiB free, at $40/TiB.
	gib := 730e6 * 2 * 1000 / math.Pow(2, 30)
	near(t, "Pub/Sub monthly", pub.Monthly+del.Monthly, (gib-10)/1024*40)

	in.AvgBytes = 6300 // above the minimum: billed as is
	e, _ = Compute(in, ListPrices)
	near(t, "publish per million at 6300 B", item(t, e, "Pub/Sub publish").PerMillion, 6300*1e6/math.Pow(2, 40)*40)
}

// Without ordering, a publish request carries a topic's share of one
// Debezium batch (poll + publisher delay + round trip of arrivals), within
// the request limits; its 1000-byte minimum is shared. Push delivery still
// pays the minimum per message; pull pays it per response.
func TestBatchedPublish(t *testing.T) {
	pb := ProfilePublisher(Compact, 1)
	cycle := (CompactPollMs + CompactDelayMs + PublishRoundTripMs) / 1000.0
	near(t, "10M/h", pb.MessagesPerRequest(1e7, 300), 1e7/3600*cycle)
	near(t, "element count cap", pb.MessagesPerRequest(1e9, 300), CompactElementCount)
	near(t, "byte cap", pb.MessagesPerRequest(1e9, 100000), math.Floor(CompactByteThreshold/100000.0))
	pb.Topics = 4
	near(t, "spread over topics", pb.MessagesPerRequest(1e7, 300), 1e7/3600*cycle/4)
	near(t, "never below one", pb.MessagesPerRequest(10, 300), 1)
	pb.Ordering = true
	near(t, "ordering: one a request", pb.MessagesPerRequest(1e7, 300), 1)

	tiny := compact(Push)
	tiny.EventsPerHour, tiny.AvgBytes = 3600, 300 // 1/s: 0.18 a batch, one a request
	e, _ := Compute(tiny, ListPrices)
	near(t, "slow stream publish per million", item(t, e, "Pub/Sub publish").PerMillion, 1000*1e6/math.Pow(2, 40)*40)

	for _, d := range []Delivery{Push, Pull} {
		in := compact(d)
		in.EventsPerHour, in.AvgBytes = 1e7, 300
		e, err := Compute(in, ListPrices)
		if err != nil {
			t.Fatal(err)
		}
		perTiB := 1e6 / math.Pow(2, 40) * 40
		near(t, string(d)+" publish per million", item(t, e, "Pub/Sub publish").PerMillion, 300*perTiB)
		want := 1000.0 // push: one message a request
		if d == Pull {
			want = 300 // pull: hundreds a response, above the minimum
		}
		near(t, string(d)+" delivery per million", item(t, e, "Pub/Sub delivery").PerMillion, want*perTiB)
	}
}

func TestMessageBytes(t *testing.T) {
	got := MessageBytes(250, map[string]string{"ab": "cde", "f": ""}, `{"id":1}`)
	if want := 250 + 5 + 1 + 8 + 20 + MessageIDBytes; got != want {
		t.Errorf("MessageBytes = %d, want %d", got, want)
	}
}

// Kafka: the smallest cluster (3 vCPU, 3 GiB) carries tens of MiB/s; past
// that, vCPUs for 20 MiB/s published and 80 MiB/s consumed each, at 50 %.
// Retained data and replication grow with the bytes; no Pub/Sub.
func TestKafka(t *testing.T) {
	in := compact(Kafka)
	in.EventsPerHour, in.AvgBytes = 1e7, 700
	e, err := Compute(in, ListPrices)
	if err != nil {
		t.Fatal(err)
	}
	for _, li := range e.Items {
		if strings.HasPrefix(li.Name, "Pub/Sub") || strings.Contains(li.Name, "request") {
			t.Errorf("kafka delivery bills %q", li.Name)
		}
	}
	near(t, "compute", item(t, e, "Managed Kafka compute").Monthly, 730*(3*0.054+3*0.009))
	near(t, "local storage", item(t, e, "Managed Kafka local storage").Monthly, 300*ListPrices.KafkaLocalGiBMonth.USD)
	near(t, "replication per million", item(t, e, "Managed Kafka inter-zone").PerMillion, 1e6*2*700/math.Pow(2, 30)*ListPrices.KafkaInterZonePerGiB.USD)
	near(t, "storage per million", item(t, e, "Managed Kafka persistent").PerMillion, 1e6*700*24/730/math.Pow(2, 30)*ListPrices.KafkaPersistGiBMonth.USD)
	near(t, "storage monthly", item(t, e, "Managed Kafka persistent").Monthly, 1e7*24*700/math.Pow(2, 30)*ListPrices.KafkaPersistGiBMonth.USD)
	if !strings.Contains(item(t, e, "Cloud Run worker pool CPU").Name, "instance billing") {
		t.Error("the worker pool is billed by instance")
	}

	in.EventsPerHour = 1e9 // 194,444 B/s × 1e3 ≈ 185 MiB/s: (9.27 + 2.32) / 0.5 → 24 vCPU
	vcpu, ram := KafkaSize(in, ListPrices)
	mibps := 1e9 / 3600 * 700 / (1 << 20)
	if want := math.Ceil((mibps/20 + mibps/80) / 0.5); vcpu != want || ram != want {
		t.Errorf("size at 1e9/h = %v vCPU %v GiB, want %v", vcpu, ram, want)
	}
	in.KafkaVCPU, in.KafkaGiB = 6, 24
	if vcpu, ram := KafkaSize(in, ListPrices); vcpu != 6 || ram != 24 {
		t.Errorf("given size not kept: %v %v", vcpu, ram)
	}
}

func TestCloudRunInstanceFloorAndScaling(t *testing.T) {
	in := base()
	e, _ := Compute(in, ListPrices)
	// 1M events/h × 40 µs = 0.011 vCPU busy: the one-instance floor rules.
	month := 730 * 3600.0
	near(t, "CPU monthly", item(t, e, "Cloud Run function CPU").Monthly, (month-240000)*0.000018)
	near(t, "memory monthly", item(t, e, "Cloud Run function memory").Monthly, (month*0.5-450000)*0.000002)
	// Variable: 40 µs / 0.6 utilisation of one vCPU per event.
	near(t, "CPU per million", item(t, e, "Cloud Run function CPU").PerMillion, 1e6*40e-6/0.6*0.000018)

	in.EventsPerHour = 1e8 // 27,778/s × 40 µs = 1.11 vCPU busy: 1.85 instances at 60 %
	e, _ = Compute(in, ListPrices)
	inst := 1e8 / 3600 * 40e-6 / 0.6
	near(t, "CPU monthly at 100M/h", item(t, e, "Cloud Run function CPU").Monthly, (inst*month-240000)*0.000018)
	if !strings.Contains(item(t, e, "Cloud Run function CPU").Name, "1.85 instances") {
		t.Errorf("name %q", item(t, e, "Cloud Run function CPU").Name)
	}
}

func TestRequestBillingAddsRequestFee(t *testing.T) {
	in := base()
	in.Billing = RequestBilling
	e, _ := Compute(in, ListPrices)
	req := item(t, e, "Cloud Run requests")
	near(t, "requests monthly", req.Monthly, (730e6-2e6)/1e6*0.40)
	near(t, "requests per million", req.PerMillion, 0.40)
	near(t, "CPU monthly", item(t, e, "Cloud Run function CPU").Monthly, (730*3600.0-180000)*0.000024)

	for _, in := range []Inputs{base(), compact(Pull)} {
		in.Billing = InstanceBilling
		if in.Delivery == Pull {
			in.Billing = RequestBilling // ignored: a worker pool has no requests
		}
		e, _ = Compute(in, ListPrices)
		for _, li := range e.Items {
			if strings.HasPrefix(li.Name, "Cloud Run requests") {
				t.Fatalf("%s delivery, %s billing charged per request", in.Delivery, in.Billing)
			}
		}
	}
}

func TestRequestLogs(t *testing.T) {
	in := base()
	in.RequestLogs = true
	e, _ := Compute(in, ListPrices)
	logs := item(t, e, "Cloud Logging")
	gib := 730e6 * 1024 / math.Pow(2, 30)
	near(t, "logs monthly", logs.Monthly, (gib-50)*0.50)
	if !logs.Unconfirmed {
		t.Error("the log entry size is an estimate: the line must say so")
	}
	in.RequestLogs = false
	e, _ = Compute(in, ListPrices)
	if li := item(t, e, "Cloud Logging"); li.Monthly != 0 || li.PerMillion != 0 {
		t.Errorf("excluded logs cost %+v", li)
	}
}

func TestFixedCostsAndTotals(t *testing.T) {
	in := base()
	in.RedisTier, in.RedisGB, in.VM = RedisBasic, 5, "e2-medium"
	e, _ := Compute(in, ListPrices)
	near(t, "redis", item(t, e, "Memorystore").Monthly, 5*730*ListPrices.RedisBasicGBHour.USD)
	near(t, "vm", item(t, e, "Debezium VM").Monthly, 730*ListPrices.VMHour["e2-medium"].USD)
	sum, varSum := 0.0, 0.0
	for _, li := range e.Items {
		sum += li.Monthly
		varSum += li.PerMillion
	}
	near(t, "total", e.Monthly, sum)
	near(t, "variable", e.VariablePerM, varSum)
	near(t, "all-in per million", e.PerMillion, sum/730)
}

func TestValidate(t *testing.T) {
	for name, mut := range map[string]func(*Inputs){
		"zero events":  func(in *Inputs) { in.EventsPerHour = 0 },
		"NaN events":   func(in *Inputs) { in.EventsPerHour = math.NaN() },
		"zero bytes":   func(in *Inputs) { in.AvgBytes = 0 },
		"over 10 MiB":  func(in *Inputs) { in.AvgBytes = 11 << 20 },
		"negative CPU": func(in *Inputs) { in.CPUMicrosPerEvent = -1 },
		"billing":      func(in *Inputs) { in.Billing = "cpu" },
		"redis tier":   func(in *Inputs) { in.RedisTier = "premium" },
		"redis size":   func(in *Inputs) { in.RedisGB = 0.5 },
		"unpriced VM":  func(in *Inputs) { in.VM = "n2-standard-2" },
		"format":       func(in *Inputs) { in.Format = "avro" },
		"delivery":     func(in *Inputs) { in.Delivery = "email" },
		"no topics":    func(in *Inputs) { in.Publisher.Topics = 0 },
		"tiny kafka":   func(in *Inputs) { in.KafkaVCPU = 2 },
		"kafka ram":    func(in *Inputs) { in.KafkaVCPU, in.KafkaGiB = 3, 30 },
		"ram alone":    func(in *Inputs) { in.KafkaGiB = 4 },
		"retention":    func(in *Inputs) { in.RetentionHours = -1 },
	} {
		in := base()
		mut(&in)
		if _, err := Compute(in, ListPrices); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestPricesFileIsDatedAndSourced(t *testing.T) {
	if len(ListPrices.ReadOn) != len("2006-01-02") {
		t.Fatalf("ReadOn %q", ListPrices.ReadOn)
	}
	for name, p := range map[string]Price{
		"pubsub": ListPrices.PubSubPerTiB, "run cpu": ListPrices.RunRequestCPU, "run mem": ListPrices.RunRequestMem,
		"run req": ListPrices.RunRequestPerMillion, "run inst cpu": ListPrices.RunInstanceCPU,
		"run inst mem": ListPrices.RunInstanceMem, "logging": ListPrices.LoggingPerGiB,
		"redis basic": ListPrices.RedisBasicGBHour, "redis std": ListPrices.RedisStandardGBHour,
		"e2-small": ListPrices.VMHour["e2-small"], "e2-medium": ListPrices.VMHour["e2-medium"],
		"kafka vcpu": ListPrices.KafkaVCPUHour, "kafka ram": ListPrices.KafkaGiBHour,
		"kafka local": ListPrices.KafkaLocalGiBMonth, "kafka persistent": ListPrices.KafkaPersistGiBMonth,
		"kafka inter-zone": ListPrices.KafkaInterZonePerGiB,
	} {
		if p.USD <= 0 || p.Source == "" {
			t.Errorf("%s: %+v", name, p)
		}
	}
}

func TestNum(t *testing.T) {
	for _, c := range []struct {
		v    float64
		dec  int
		want string
	}{{0, 2, "0.00"}, {999, 0, "999"}, {1000, 0, "1,000"}, {1234567.891, 2, "1,234,567.89"}, {-12345, 1, "-12,345.0"}} {
		if got := num(c.v, c.dec); got != c.want {
			t.Errorf("num(%v, %d) = %q, want %q", c.v, c.dec, got, c.want)
		}
	}
}

// The compact publisher settings the model uses are the ones the compact
// profile ships.
func TestCompactPublisherMatchesProfile(t *testing.T) {
	b, err := os.ReadFile("../debezium-server/application.properties")
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			props[k] = v
		}
	}
	for key, want := range map[string]float64{
		"debezium.source.max.batch.size":                     CompactMaxBatchSize,
		"debezium.source.poll.interval.ms":                   CompactPollMs,
		"debezium.sink.pubsub.batch.element.count.threshold": CompactElementCount,
		"debezium.sink.pubsub.batch.request.byte.threshold":  CompactByteThreshold,
		"debezium.sink.pubsub.batch.delay.threshold.ms":      CompactDelayMs,
	} {
		got, err := strconv.ParseFloat(props[key], 64)
		if err != nil || got != want {
			t.Errorf("%s = %q in the profile, the model uses %v", key, props[key], want)
		}
	}
}
