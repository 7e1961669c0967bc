package cost

import (
	"math"
	"strings"
	"testing"
)

func base() Inputs {
	return Inputs{EventsPerHour: 1e6, AvgBytes: 1000, CPUMicrosPerEvent: 40, Billing: InstanceBilling,
		RedisTier: RedisStandard, RedisGB: 1, VM: "e2-small"}
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

// The 1000-byte minimum, billed on publish and on push delivery:
// 2 × 1000 B × 1e6 / 2^40 B/TiB × $40/TiB ≈ $0.0728 per million messages.
func TestPubSubMinimumPerMessage(t *testing.T) {
	in := base()
	in.AvgBytes = 300 // below the minimum: billed as 1000
	e, err := Compute(in, ListPrices)
	if err != nil {
		t.Fatal(err)
	}
	ps := item(t, e, "Pub/Sub")
	near(t, "Pub/Sub per million", ps.PerMillion, 2*1000*1e6/math.Pow(2, 40)*40)
	if ps.PerMillion < 0.0727 || ps.PerMillion > 0.0728 {
		t.Errorf("Pub/Sub per million %v, want about 0.0728", ps.PerMillion)
	}
	// 730 M messages × 2 × 1000 B, less 10 GiB free, at $40/TiB.
	gib := 730e6 * 2 * 1000 / math.Pow(2, 30)
	near(t, "Pub/Sub monthly", ps.Monthly, (gib-10)/1024*40)

	in.AvgBytes = 6300 // above the minimum: billed as is
	e, _ = Compute(in, ListPrices)
	near(t, "Pub/Sub per million at 6300 B", item(t, e, "Pub/Sub").PerMillion, 2*6300*1e6/math.Pow(2, 40)*40)
}

func TestCloudRunInstanceFloorAndScaling(t *testing.T) {
	in := base()
	e, _ := Compute(in, ListPrices)
	// 1M events/h × 40 µs = 0.011 vCPU busy: the one-instance floor rules.
	month := 730 * 3600.0
	near(t, "CPU monthly", item(t, e, "Cloud Run CPU").Monthly, (month-240000)*0.000018)
	near(t, "memory monthly", item(t, e, "Cloud Run memory").Monthly, (month*0.5-450000)*0.000002)
	// Variable: 40 µs / 0.6 utilisation of one vCPU per event.
	near(t, "CPU per million", item(t, e, "Cloud Run CPU").PerMillion, 1e6*40e-6/0.6*0.000018)

	in.EventsPerHour = 1e8 // 27,778/s × 40 µs = 1.11 vCPU busy: 1.85 instances at 60 %
	e, _ = Compute(in, ListPrices)
	inst := 1e8 / 3600 * 40e-6 / 0.6
	near(t, "CPU monthly at 100M/h", item(t, e, "Cloud Run CPU").Monthly, (inst*month-240000)*0.000018)
	if !strings.Contains(item(t, e, "Cloud Run CPU").Name, "1.85 instances") {
		t.Errorf("name %q", item(t, e, "Cloud Run CPU").Name)
	}
}

func TestRequestBillingAddsRequestFee(t *testing.T) {
	in := base()
	in.Billing = RequestBilling
	e, _ := Compute(in, ListPrices)
	req := item(t, e, "Cloud Run requests")
	near(t, "requests monthly", req.Monthly, (730e6-2e6)/1e6*0.40)
	near(t, "requests per million", req.PerMillion, 0.40)
	near(t, "CPU monthly", item(t, e, "Cloud Run CPU").Monthly, (730*3600.0-180000)*0.000024)

	in.Billing = InstanceBilling
	e, _ = Compute(in, ListPrices)
	for _, li := range e.Items {
		if strings.HasPrefix(li.Name, "Cloud Run requests") {
			t.Fatal("instance billing charged per request")
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
