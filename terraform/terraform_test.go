// Package terraform_test checks the Terraform configuration without providers or network:
// every reference resolves to a declaration, nothing declared is left unused, providers are
// pinned, templatefile() calls match their templates, and the Debezium templates render to a
// configuration with the settings the handler depends on.
package terraform_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"go.yaml.in/yaml/v3"
)

// module is what the checker learns from a set of .tf files.
type module struct {
	dir       string
	variables map[string]bool
	locals    map[string]bool
	resources map[string]bool // "TYPE.NAME"
	data      map[string]bool // "TYPE.NAME"
	modules   map[string]bool
	providers map[string]*hcl.Attribute // required_providers entries
	usedVars  map[string]bool
	usedLocal map[string]bool
	localExpr map[string]hclsyntax.Expression
	templates []templateCall
	problems  []string
}

type templateCall struct {
	rng  hcl.Range
	path string          // resolved template path, "" if not static
	keys map[string]bool // keys of the vars object, nil if not an object literal
}

// builtinRoots never name a declaration.
var builtinRoots = map[string]bool{"each": true, "count": true, "path": true, "self": true, "terraform": true}

// builtinResourceTypes are resource types provided by Terraform itself.
var builtinResourceTypes = map[string]bool{"terraform_data": true}

func newModule(dir string) *module {
	return &module{
		dir:       dir,
		variables: map[string]bool{},
		locals:    map[string]bool{},
		resources: map[string]bool{},
		data:      map[string]bool{},
		modules:   map[string]bool{},
		providers: map[string]*hcl.Attribute{},
		usedVars:  map[string]bool{},
		usedLocal: map[string]bool{},
		localExpr: map[string]hclsyntax.Expression{},
	}
}

func (m *module) problemf(rng hcl.Range, format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf("%s:%d: %s", filepath.Base(rng.Filename), rng.Start.Line, fmt.Sprintf(format, args...)))
}

// checkFiles parses the given files (name -> content) and returns the problems found, sorted.
func checkFiles(dir string, files map[string][]byte) []string {
	m := newModule(dir)
	p := hclparse.NewParser()
	var bodies []*hclsyntax.Body
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, diags := p.ParseHCL(files[name], name)
		if diags.HasErrors() {
			m.problems = append(m.problems, diags.Error())
			continue
		}
		bodies = append(bodies, f.Body.(*hclsyntax.Body))
	}
	for _, b := range bodies {
		m.declare(b)
	}
	for _, b := range bodies {
		m.walkBody(b, map[string]bool{})
	}
	for v := range m.variables {
		if !m.usedVars[v] {
			m.problems = append(m.problems, fmt.Sprintf("variable %q is declared but never used", v))
		}
	}
	for l := range m.locals {
		if !m.usedLocal[l] {
			m.problems = append(m.problems, fmt.Sprintf("local %q is declared but never used", l))
		}
	}
	m.checkProviders()
	m.checkTemplates()
	sort.Strings(m.problems)
	return m.problems
}

func (m *module) declare(body *hclsyntax.Body) {
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			m.variables[b.Labels[0]] = true
		case "locals":
			for name := range b.Body.Attributes {
				if m.locals[name] {
					m.problemf(b.Body.Attributes[name].SrcRange, "local %q declared twice", name)
				}
				m.locals[name] = true
				m.localExpr[name] = b.Body.Attributes[name].Expr
			}
		case "resource":
			key := b.Labels[0] + "." + b.Labels[1]
			if m.resources[key] {
				m.problemf(b.DefRange(), "resource %s declared twice", key)
			}
			m.resources[key] = true
		case "data":
			m.data[b.Labels[0]+"."+b.Labels[1]] = true
		case "module":
			m.modules[b.Labels[0]] = true
		case "terraform":
			for _, tb := range b.Body.Blocks {
				if tb.Type != "required_providers" {
					continue
				}
				for name, attr := range tb.Body.Attributes {
					m.providers[name] = attr.AsHCLAttribute()
				}
			}
		}
	}
}

// walkBody checks every expression in body; iters are names bound by enclosing dynamic blocks.
func (m *module) walkBody(body *hclsyntax.Body, iters map[string]bool) {
	for _, attr := range body.Attributes {
		m.walkExpr(attr.Expr, iters)
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			// "type" is a type expression (string, list(string)), not a reference.
			for _, attr := range b.Body.Attributes {
				if attr.Name != "type" {
					m.walkExpr(attr.Expr, iters)
				}
			}
			m.walkBody(&hclsyntax.Body{Blocks: b.Body.Blocks}, iters)
			continue
		case "moved":
			// "from" is a former address: by design no longer declared. "to" must be.
			if attr, ok := b.Body.Attributes["to"]; ok {
				m.walkExpr(attr.Expr, iters)
			}
			continue
		case "lifecycle":
			// ignore_changes names attributes of the resource itself.
			for _, attr := range b.Body.Attributes {
				if attr.Name != "ignore_changes" {
					m.walkExpr(attr.Expr, iters)
				}
			}
			continue
		}
		if b.Type == "dynamic" {
			inner := map[string]bool{}
			for k := range iters {
				inner[k] = true
			}
			name := b.Labels[0]
			if it, ok := b.Body.Attributes["iterator"]; ok {
				if trav, diags := hcl.AbsTraversalForExpr(it.Expr); !diags.HasErrors() {
					name = trav.RootName()
				}
			}
			inner[name] = true
			for _, attr := range b.Body.Attributes {
				if attr.Name == "for_each" || attr.Name == "labels" {
					m.walkExpr(attr.Expr, iters)
				}
			}
			for _, cb := range b.Body.Blocks {
				if cb.Type == "content" {
					m.walkBody(cb.Body, inner)
				}
			}
			continue
		}
		m.walkBody(b.Body, iters)
	}
}

func (m *module) walkExpr(expr hclsyntax.Expression, iters map[string]bool) {
	for _, trav := range expr.Variables() {
		m.checkTraversal(trav, iters)
	}
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && call.Name == "templatefile" {
			m.templates = append(m.templates, m.templateCall(call))
		}
		return nil
	})
}

func (m *module) checkTraversal(trav hcl.Traversal, iters map[string]bool) {
	root := trav.RootName()
	rng := trav.SourceRange()
	attr := func(i int) (string, bool) {
		if len(trav) <= i {
			return "", false
		}
		a, ok := trav[i].(hcl.TraverseAttr)
		return a.Name, ok
	}
	switch {
	case builtinRoots[root] || iters[root]:
	case root == "var":
		if name, ok := attr(1); ok {
			m.usedVars[name] = true
			if !m.variables[name] {
				m.problemf(rng, "var.%s is not declared", name)
			}
		}
	case root == "local":
		if name, ok := attr(1); ok {
			m.usedLocal[name] = true
			if !m.locals[name] {
				m.problemf(rng, "local.%s is not declared", name)
			}
		}
	case root == "data":
		typ, ok1 := attr(1)
		name, ok2 := attr(2)
		if ok1 && ok2 && !m.data[typ+"."+name] {
			m.problemf(rng, "data.%s.%s is not declared", typ, name)
		}
	case root == "module":
		if name, ok := attr(1); ok && !m.modules[name] {
			m.problemf(rng, "module.%s is not declared", name)
		}
	case strings.Contains(root, "_"):
		// A resource reference: TYPE.NAME[...]...
		name, ok := attr(1)
		if !ok {
			m.problemf(rng, "reference to %s without a resource name", root)
		} else if !m.resources[root+"."+name] {
			m.problemf(rng, "resource %s.%s is not declared", root, name)
		}
	default:
		m.problemf(rng, "unknown reference %q", root)
	}
}

func (m *module) templateCall(call *hclsyntax.FunctionCallExpr) templateCall {
	tc := templateCall{rng: call.Range()}
	if len(call.Args) != 2 {
		m.problemf(call.Range(), "templatefile needs 2 arguments")
		return tc
	}
	// The path may use path.module and locals that are themselves static (e.g. a directory).
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.dir)}),
	}}
	static := map[string]cty.Value{}
	for name, e := range m.localExpr {
		if v, diags := e.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
			static[name] = v
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(static)
	if v, diags := call.Args[0].Value(ctx); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() {
		tc.path = v.AsString()
	}
	if obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr); ok {
		tc.keys = map[string]bool{}
		for _, item := range obj.Items {
			if k := hcl.ExprAsKeyword(item.KeyExpr); k != "" {
				tc.keys[k] = true
			}
		}
	}
	return tc
}

// checkTemplates: every variable a template uses is passed, and every passed one is used.
func (m *module) checkTemplates() {
	for _, tc := range m.templates {
		if tc.path == "" || tc.keys == nil {
			m.problemf(tc.rng, "templatefile call is not static (literal path and object expected)")
			continue
		}
		src, err := os.ReadFile(tc.path)
		if err != nil {
			m.problemf(tc.rng, "template: %v", err)
			continue
		}
		expr, diags := hclsyntax.ParseTemplate(src, tc.path, hcl.InitialPos)
		if diags.HasErrors() {
			m.problemf(tc.rng, "template %s: %s", tc.path, diags.Error())
			continue
		}
		used := map[string]bool{}
		for _, t := range expr.Variables() {
			used[t.RootName()] = true
			if !tc.keys[t.RootName()] {
				m.problemf(tc.rng, "template %s uses %q, which is not passed", filepath.Base(tc.path), t.RootName())
			}
		}
		for k := range tc.keys {
			if !used[k] {
				m.problemf(tc.rng, "template %s is passed %q but never uses it", filepath.Base(tc.path), k)
			}
		}
	}
}

// checkProviders: every provider has a version constraint, and every resource/data type's
// provider is required.
func (m *module) checkProviders() {
	for name, attr := range m.providers {
		obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			m.problemf(attr.Range, "required_providers.%s is not an object with source and version", name)
			continue
		}
		version := ""
		for _, item := range obj.Items {
			if hcl.ExprAsKeyword(item.KeyExpr) == "version" {
				if v, diags := item.ValueExpr.Value(nil); !diags.HasErrors() && v.Type() == cty.String {
					version = v.AsString()
				}
			}
		}
		if !regexp.MustCompile(`^\s*(~>|=)?\s*\d+\.\d+(\.\d+)?\s*$`).MatchString(version) {
			m.problemf(attr.Range, "provider %s is not pinned (want \"~> X.Y\" or an exact version, got %q)", name, version)
		}
	}
	types := map[string]bool{}
	for k := range m.resources {
		types[strings.SplitN(k, ".", 2)[0]] = true
	}
	for k := range m.data {
		types[strings.SplitN(k, ".", 2)[0]] = true
	}
	for typ := range types {
		if builtinResourceTypes[typ] {
			continue
		}
		prov := strings.SplitN(typ, "_", 2)[0]
		if m.providers[prov] == nil {
			m.problems = append(m.problems, fmt.Sprintf("%s needs provider %q in required_providers", typ, prov))
		}
	}
}

func readTF(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s: %v", dir, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	return files
}

func TestConfiguration(t *testing.T) {
	for _, p := range checkFiles(".", readTF(t, ".")) {
		t.Error(p)
	}
}

// The checker must catch each kind of mistake it claims to catch.
func TestCheckerFindsMistakes(t *testing.T) {
	broken := map[string][]byte{"broken.tf": []byte(`
terraform {
  required_providers {
    google = { source = "hashicorp/google" }
    random = { source = "hashicorp/random", version = ">= 3.0" }
  }
}
variable "used" { type = string }
variable "unused" { type = string }
locals { a = var.used }
locals { lonely = 1 }
resource "google_pubsub_topic" "t" {
  name   = "${local.a}-${var.missing}"
  labels = { x = local.nope }
}
resource "google_pubsub_subscription" "s" {
  topic = google_pubsub_topic.other.id
  name  = data.google_project.p.number
  dynamic "push_config" {
    for_each = [1]
    content { push_endpoint = push_config.value }
  }
  ack_deadline_seconds = [for x in [1] : x][0] + lenght.x
}
resource "aws_s3_bucket" "b" { bucket = google_pubsub_topic.t.name }
moved {
  from = google_pubsub_topic.gone
  to   = google_pubsub_topic.renamed[0]
}
`)}
	want := []string{
		`var.missing is not declared`,
		`variable "unused" is declared but never used`,
		`local.nope is not declared`,
		`local "lonely" is declared but never used`,
		`resource google_pubsub_topic.other is not declared`,
		`data.google_project.p is not declared`,
		`unknown reference "lenght"`,
		`provider google is not pinned`,
		`provider random is not pinned`,
		`aws_s3_bucket needs provider "aws"`,
		`resource google_pubsub_topic.renamed is not declared`, // a moved block's "to" must exist
	}
	got := checkFiles(".", broken)
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("checker missed %q; it reported:\n%s", w, joined)
		}
	}
	// Dynamic-block iterators, for-expression variables, var.used and a moved block's former
	// address are fine.
	for _, bad := range []string{"push_config", `"x"`, "var.used", "google_pubsub_topic.gone"} {
		if strings.Contains(joined, bad) {
			t.Errorf("false positive mentioning %s:\n%s", bad, joined)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), joined)
	}

	// Templates: an unknown variable and an unused one are both reported.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.tftpl"), []byte("a=${alpha}\nb=${beta}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl := map[string][]byte{"t.tf": []byte(`
locals { x = templatefile("${path.module}/t.tftpl", { alpha = 1, gamma = 2 }) }
output "x" { value = local.x }
`)}
	joined = strings.Join(checkFiles(dir, tpl), "\n")
	for _, w := range []string{`uses "beta", which is not passed`, `passed "gamma" but never uses it`} {
		if !strings.Contains(joined, w) {
			t.Errorf("template check missed %q; got:\n%s", w, joined)
		}
	}
}

// render evaluates a template file with string variables, as templatefile() would.
func render(t *testing.T, path string, vars map[string]string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}}
	for k, v := range vars {
		ctx.Variables[k] = cty.StringVal(v)
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return v.AsString()
}

// parseProperties reads a Java .properties file the simple way our file is written:
// comments, blank lines and key=value lines only (backslash escapes kept as written).
func parseProperties(t *testing.T, text string) map[string]string {
	t.Helper()
	props := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t:") {
			t.Errorf("properties line %d is not key=value: %q", line, l)
			continue
		}
		if _, dup := props[k]; dup {
			t.Errorf("properties line %d: %s set twice", line, k)
		}
		if strings.Contains(v, "${") || strings.Contains(v, "%{") {
			t.Errorf("properties line %d: unrendered template in %q", line, l)
		}
		props[k] = v
	}
	return props
}

var sampleProps = map[string]string{
	"project_id":            "my-project",
	"topic_prefix":          "cdc",
	"db_user":               "debezium",
	"server_id":             "184054",
	"table_include_list":    `inventory\\.customers,inventory\\.debezium_signal`,
	"signal_table":          "inventory.debezium_signal",
	"message_format":        "full",
	"heartbeat_interval_ms": "10000",
	"sink":                  "pubsub",
	"kafka_bootstrap":       "",
	"kafka_auth":            "google",
}

// kafkaProps are sampleProps with the Kafka sink on Managed Kafka.
func kafkaProps() map[string]string {
	vars := map[string]string{}
	for k, v := range sampleProps {
		vars[k] = v
	}
	vars["sink"] = "kafka"
	vars["kafka_bootstrap"] = "bootstrap.cdc-kafka.europe-west1.managedkafka.my-project.cloud.goog:9092"
	return vars
}

// The Kafka sink replaces the Pub/Sub one and nothing else: the source and the encodings are
// the same, so the worker decodes what the push function decodes.
func TestDebeziumKafkaProperties(t *testing.T) {
	pubsub := parseProperties(t, render(t, "../debezium-server/application.properties", sampleProps))
	kafka := parseProperties(t, render(t, "../debezium-server/application.properties", kafkaProps()))
	want := map[string]string{
		"debezium.sink.type":                                               "kafka",
		"debezium.sink.kafka.producer.bootstrap.servers":                   "bootstrap.cdc-kafka.europe-west1.managedkafka.my-project.cloud.goog:9092",
		"debezium.sink.kafka.producer.acks":                                "all",
		"debezium.sink.kafka.producer.enable.idempotence":                  "true",
		"debezium.sink.kafka.producer.security.protocol":                   "SASL_SSL",
		"debezium.sink.kafka.producer.sasl.mechanism":                      "OAUTHBEARER",
		"debezium.sink.kafka.producer.sasl.oauthbearer.token.endpoint.url": "file:///run/kafka/token",
	}
	for k, v := range want {
		if got := kafka[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for k, v := range pubsub {
		if strings.HasPrefix(k, "debezium.sink.") {
			continue
		}
		if kafka[k] != v {
			t.Errorf("%s differs between the sinks: %q (pubsub) vs %q (kafka)", k, v, kafka[k])
		}
	}
	for k := range kafka {
		if !strings.HasPrefix(k, "debezium.sink.") {
			if _, ok := pubsub[k]; !ok {
				t.Errorf("%s is set for Kafka only", k)
			}
		} else if strings.HasPrefix(k, "debezium.sink.pubsub.") {
			t.Errorf("%s rendered for the Kafka sink", k)
		}
	}
	// Without Google auth (an existing plaintext cluster) no SASL lines render.
	plain := kafkaProps()
	plain["kafka_auth"] = "none"
	for k := range parseProperties(t, render(t, "../debezium-server/application.properties", plain)) {
		if strings.Contains(k, "sasl") || strings.Contains(k, "security.protocol") {
			t.Errorf("%s rendered without Google auth", k)
		}
	}
}

func TestDebeziumProperties(t *testing.T) {
	props := parseProperties(t, render(t, "../debezium-server/application.properties", sampleProps))
	want := map[string]string{
		"debezium.sink.type":                                    "pubsub",
		"debezium.sink.pubsub.project.id":                       "my-project",
		"debezium.sink.pubsub.ordering.enabled":                 "true",
		"debezium.source.connector.class":                       "io.debezium.connector.mysql.MySqlConnector",
		"debezium.source.topic.prefix":                          "cdc",
		"debezium.source.table.include.list":                    `inventory\\.customers,inventory\\.debezium_signal`,
		"debezium.source.snapshot.mode":                         "initial",
		"debezium.source.skipped.operations":                    "none",
		"debezium.source.include.schema.changes":                "false",
		"debezium.source.decimal.handling.mode":                 "precise",
		"debezium.source.time.precision.mode":                   "adaptive_time_microseconds",
		"debezium.source.bigint.unsigned.handling.mode":         "precise",
		"debezium.source.binary.handling.mode":                  "bytes",
		"debezium.format.value.replace.null.with.default":       "false",
		"debezium.format.value.schemas.enable":                  "true",
		"debezium.format.key.schemas.enable":                    "false",
		"debezium.source.topic.heartbeat.prefix":                "heartbeat",
		"debezium.source.signal.data.collection":                "inventory.debezium_signal",
		"debezium.source.offset.storage.file.filename":          "/debezium/data/offsets.dat",
		"debezium.source.schema.history.internal.file.filename": "/debezium/data/schema-history.dat",
		"debezium.source.tombstones.on.delete":                  "false",
	}
	wantProps(t, "full", props, want)
	// Without a signal table the signalling lines disappear instead of rendering empty values.
	noSignal := withProps(map[string]string{"signal_table": ""})
	without := parseProperties(t, render(t, "../debezium-server/application.properties", noSignal))
	if _, ok := without["debezium.source.signal.data.collection"]; ok || len(without) != len(props)-3 {
		t.Errorf("without a signal table: %d properties (want %d), signal.data.collection present %v", len(without), len(props)-3, ok)
	}
	if _, ok := props["debezium.source.database.password"]; ok {
		t.Error("the password must not be in application.properties")
	}
	// Every topic Debezium writes must be a valid Pub/Sub topic name.
	topicRE := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)
	prefix := props["debezium.source.topic.prefix"]
	for _, topic := range []string{
		props["debezium.source.topic.heartbeat.prefix"] + "." + prefix,
		prefix + ".inventory.customers",
	} {
		if !topicRE.MatchString(topic) || strings.HasPrefix(topic, "goog") {
			t.Errorf("topic %q is not a valid Pub/Sub name", topic)
		}
	}
}

// TestDebeziumCompactProfile: message_format = "compact" renders the compact
// profile (flattened schemaless rows, no ordering key, no attributes,
// batched publishes) and nothing of it leaks into the full profile.
func TestDebeziumCompactProfile(t *testing.T) {
	props := parseProperties(t, render(t, "../debezium-server/application.properties",
		withProps(map[string]string{"message_format": "compact"})))
	want := map[string]string{
		"debezium.sink.pubsub.ordering.enabled":                     "false",
		"debezium.format.value.schemas.enable":                      "false",
		"debezium.format.value.replace.null.with.default":           "false",
		"debezium.transforms":                                       "unwrap,dropkeyheaders",
		"debezium.transforms.unwrap.type":                           "io.debezium.transforms.ExtractNewRecordState",
		"debezium.transforms.unwrap.add.fields":                     "op,source.file,source.pos,source.row,source.ts_ms,db,table,ts_ms",
		"debezium.transforms.unwrap.delete.tombstone.handling.mode": "rewrite",
		"debezium.transforms.unwrap.replace.null.with.default":      "false",
		"debezium.transforms.dropkeyheaders.type":                   "org.apache.kafka.connect.transforms.DropHeaders",
		"debezium.transforms.dropkeyheaders.headers":                "__debezium.oldkey,__debezium.newkey",
		"debezium.source.extended.headers.enabled":                  "false",
		"debezium.sink.pubsub.batch.element.count.threshold":        "1000",
		"debezium.source.decimal.handling.mode":                     "precise",
		"debezium.source.time.precision.mode":                       "adaptive_time_microseconds",
		"debezium.source.bigint.unsigned.handling.mode":             "precise",
		"debezium.source.binary.handling.mode":                      "bytes",
	}
	wantProps(t, "compact", props, want)
	batch, queue := props["debezium.source.max.batch.size"], props["debezium.source.max.queue.size"]
	if b, q := atoi(t, batch), atoi(t, queue); b < 3000 || q <= b {
		t.Errorf("compact: max.batch.size %s must carry 30k/s (>= 3000) and max.queue.size %s exceed it", batch, queue)
	}
	full := parseProperties(t, render(t, "../debezium-server/application.properties", sampleProps))
	for k := range props {
		if _, ok := full[k]; !ok && !strings.HasPrefix(k, "debezium.transforms") &&
			!strings.HasPrefix(k, "debezium.sink.pubsub.batch.") && k != "debezium.source.extended.headers.enabled" &&
			!strings.HasPrefix(k, "debezium.source.max.") && k != "debezium.source.poll.interval.ms" {
			t.Errorf("compact sets %s, which the full profile lacks", k)
		}
	}
	for k := range full {
		if strings.HasPrefix(k, "debezium.transforms") || k == "debezium.source.extended.headers.enabled" {
			t.Errorf("full profile sets %s", k)
		}
	}
}

// withProps returns sampleProps with some variables replaced.
func withProps(over map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range sampleProps {
		vars[k] = v
	}
	for k, v := range over {
		vars[k] = v
	}
	return vars
}

// wantProps reports every key of want that props lacks or sets otherwise.
func wantProps(t *testing.T, profile string, props, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := props[k]; !ok || got != v {
			t.Errorf("%s: %s = %q (present %v), want %q", profile, k, got, ok, v)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("%q is not a number", s)
	}
	return n
}

// renderCloudInit renders cloud-init around props and returns its files (base64 ones decoded)
// and its runcmd lines.
func renderCloudInit(t *testing.T, props, kafkaAuth, format string) (map[string]string, []string) {
	t.Helper()
	b64 := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	out := render(t, "../debezium-server/cloud-init.yaml.tftpl", map[string]string{
		"application_properties_b64": base64.StdEncoding.EncodeToString([]byte(props)),
		"jmx_metrics_b64":            b64("../debezium-server/jmx-metrics.yml"),
		"otel_config_b64":            b64("../debezium-server/otel-collector.yaml"),
		"data_disk_device":           "debezium-data",
		"db_password_secret_version": "projects/my-project/secrets/cdc-debezium-db-password/versions/latest",
		"sql_connection_name":        "my-project:europe-west1:orders-db",
		"debezium_image":             "quay.io/debezium/server:3.6.1.Final",
		"cloudsql_proxy_image":       "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0",
		"otel_collector_image":       "otel/opentelemetry-collector-contrib:0.115.0",
		"java_max_ram_percent":       "60",
		"kafka_auth":                 kafkaAuth,
		"registry_sync":              strconv.FormatBool(format == "compact"),
		"db_user":                    "debezium",
		"redis_url_secret_version":   "projects/my-project/secrets/cdc-redis-url/versions/latest",
		"redis_ca_secret_version":    "projects/my-project/secrets/cdc-redis-ca/versions/latest",
		"cache_prefix":               "",
		"cachectl_image":             "europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:v7",
		"cachectl_registry":          "europe-west1-docker.pkg.dev",
		"schema_tables":              "inventory.customers,inventory.orders",
	})
	if !strings.HasPrefix(out, "#cloud-config\n") {
		t.Fatal("cloud-init must start with #cloud-config")
	}
	var doc struct {
		WriteFiles []struct {
			Path        string `yaml:"path"`
			Content     string `yaml:"content"`
			Encoding    string `yaml:"encoding"`
			Permissions string `yaml:"permissions"`
		} `yaml:"write_files"`
		RunCmd []string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("cloud-init is not YAML: %v", err)
	}
	files := map[string]string{}
	for _, f := range doc.WriteFiles {
		content := f.Content
		if f.Encoding == "b64" {
			dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f.Content))
			if err != nil {
				t.Fatalf("%s: bad base64: %v", f.Path, err)
			}
			content = string(dec)
		}
		files[f.Path] = content
	}
	if files["/etc/debezium/application.properties"] != props {
		t.Error("application.properties does not round-trip through cloud-init")
	}
	if len(doc.RunCmd) == 0 {
		t.Error("runcmd is empty: nothing starts the units")
	}
	return files, doc.RunCmd
}

func TestCloudInit(t *testing.T) {
	files, _ := renderCloudInit(t, render(t, "../debezium-server/application.properties", sampleProps), "none", "full")
	for _, unit := range []string{"debezium", "cloudsql-proxy", "otel-collector", "debezium-prepare", "debezium-health"} {
		body, ok := files["/etc/systemd/system/"+unit+".service"]
		if !ok {
			t.Errorf("unit %s.service missing", unit)
			continue
		}
		if !strings.Contains(body, "[Service]") {
			t.Errorf("unit %s.service has no [Service] section", unit)
		}
	}
	deb := files["/etc/systemd/system/debezium.service"]
	for _, s := range []string{"quay.io/debezium/server:3.6.1.Final", "Restart=always", "JMX_EXPORTER_PORT=9404", "/debezium/data", "--env-file /run/debezium/env"} {
		if !strings.Contains(deb, s) {
			t.Errorf("debezium.service lacks %q", s)
		}
	}
	if !strings.Contains(files["/etc/debezium/health.sh"], "/q/health") {
		t.Error("health probe does not call /q/health")
	}
	if !strings.Contains(files["/etc/systemd/system/cloudsql-proxy.service"], "--private-ip") {
		t.Error("Auth Proxy must use the private IP")
	}
	if _, ok := files["/etc/debezium/kafka-token.sh"]; ok {
		t.Error("the Kafka token writer is rendered without Kafka")
	}
	// The rendered scripts must keep their shell variables (no accidental template expansion).
	if !strings.Contains(files["/etc/debezium/prepare.sh"], `"$dev"`) {
		t.Error("prepare.sh lost its shell variables")
	}
	if _, ok := files["/etc/systemd/system/cache-schema-sync.service"]; ok || strings.Contains(files["/etc/debezium/prepare.sh"], "schema-sync.env") {
		t.Error("the full format renders the registry sync")
	}
}

// With the compact format the VM writes the column registry before Debezium starts and every
// minute: cachectl from the function's image, the DSN and Redis settings in a tmpfs env file.
func TestCloudInitCompact(t *testing.T) {
	props := render(t, "../debezium-server/application.properties", withProps(map[string]string{"message_format": "compact"}))
	files, runcmd := renderCloudInit(t, props, "none", "compact")
	sync := files["/etc/systemd/system/cache-schema-sync.service"]
	for _, s := range []string{"Type=oneshot", "--env-file /run/debezium/schema-sync.env",
		"--entrypoint /cachectl europe-west1-docker.pkg.dev/my-project/cloudsql-cache/function:v7 schema sync -tables inventory.customers,inventory.orders",
		"After=debezium-prepare.service cloudsql-proxy.service"} {
		if !strings.Contains(sync, s) {
			t.Errorf("cache-schema-sync.service lacks %q:\n%s", s, sync)
		}
	}
	if !strings.Contains(files["/etc/systemd/system/cache-schema-sync.timer"], "OnUnitActiveSec=60") {
		t.Error("the registry is not synced on a timer")
	}
	deb := files["/etc/systemd/system/debezium.service"]
	if !strings.Contains(deb, "Wants=cloudsql-proxy.service cache-schema-sync.service") || !strings.Contains(deb, "cloudsql-proxy.service cache-schema-sync.service\n") {
		t.Errorf("Debezium does not start after the first sync:\n%s", deb)
	}
	prep := files["/etc/debezium/prepare.sh"]
	for _, s := range []string{`MYSQL_DSN=%s:%s@tcp(127.0.0.1:3306)/`, `"debezium" "$password"`, "projects/my-project/secrets/cdc-redis-url/versions/latest",
		"REDIS_CA_CERT=/run/debezium/redis-ca.pem", "mv /run/debezium/schema-sync.env.tmp /run/debezium/schema-sync.env"} {
		if !strings.Contains(prep, s) {
			t.Errorf("prepare.sh lacks %q", s)
		}
	}
	cmds := strings.Join(runcmd, "\n")
	for _, s := range []string{"docker-credential-gcr configure-docker --registries=europe-west1-docker.pkg.dev", "cache-schema-sync.timer"} {
		if !strings.Contains(cmds, s) {
			t.Errorf("runcmd lacks %q", s)
		}
	}
}

// With Managed Kafka the VM writes the OAUTHBEARER token file before Debezium starts, refreshes it,
// and hands it to the container read-only, with the JVM allowed to read it.
func TestCloudInitKafka(t *testing.T) {
	files, runcmd := renderCloudInit(t, render(t, "../debezium-server/application.properties", kafkaProps()), "google", "full")
	script := files["/etc/debezium/kafka-token.sh"]
	for _, s := range []string{`"$md/token"`, `"$md/email"`, `GOOG_OAUTH2_TOKEN`, `"scope":"kafka"`, "/run/kafka/token.tmp", "mv /run/kafka/token.tmp /run/kafka/token"} {
		if !strings.Contains(script, s) {
			t.Errorf("kafka-token.sh lacks %q", s)
		}
	}
	deb := files["/etc/systemd/system/debezium.service"]
	for _, s := range []string{"Requires=debezium-prepare.service kafka-token.service", "-v /run/kafka:/run/kafka:ro",
		"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file:///run/kafka/token"} {
		if !strings.Contains(deb, s) {
			t.Errorf("debezium.service lacks %q", s)
		}
	}
	if !strings.Contains(files["/etc/systemd/system/kafka-token.timer"], "OnUnitActiveSec=600") {
		t.Error("the token is not refreshed")
	}
	if !strings.Contains(strings.Join(runcmd, "\n"), "kafka-token.timer") {
		t.Error("runcmd does not start the token timer")
	}
}

// The YAML side files must parse.
func TestSideFilesAreYAML(t *testing.T) {
	for _, p := range []string{"../debezium-server/jmx-metrics.yml", "../debezium-server/otel-collector.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// The log-based metrics extract fields the core writes: every field name used in
// monitoring.tf must be a JSON field of pipeline.Summary, and the filter's message must be
// pipeline.SummaryMessage. Read from the core's source so this package does not import it.
func TestLogMetricsMatchHandlerSummary(t *testing.T) {
	fields, message := summaryContract(t)

	src, err := os.ReadFile("monitoring.tf")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, "monitoring.tf")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	used := []string{"table", "rejected", "message"} // label extractor, reject counter, filter
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "locals" {
			continue
		}
		for _, name := range []string{"lag_fields", "outcome_fields"} {
			attr, ok := b.Body.Attributes[name]
			if !ok {
				continue
			}
			obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Fatalf("local.%s is not an object literal", name)
			}
			for _, item := range obj.Items {
				used = append(used, hcl.ExprAsKeyword(item.KeyExpr))
			}
		}
	}
	if len(used) < 8 {
		t.Fatalf("found only %v in monitoring.tf's lag_fields/outcome_fields", used)
	}
	for _, u := range used {
		if !fields[u] {
			t.Errorf("monitoring.tf extracts %q, which pipeline.Summary does not write", u)
		}
	}
	if !strings.Contains(string(src), fmt.Sprintf(`.message=\"%s\"`, message)) {
		t.Errorf("summary filter does not select message %q", message)
	}
}

func summaryContract(t *testing.T) (fields map[string]bool, message string) {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := filepath.Glob("../pipeline/*.go")
	if err != nil || len(pkgs) == 0 {
		t.Fatalf("pipeline sources not found: %v", err)
	}
	fields = map[string]bool{}
	for _, p := range pkgs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				st, ok := n.Type.(*ast.StructType)
				if !ok || n.Name.Name != "Summary" {
					return true
				}
				for _, fld := range st.Fields.List {
					if fld.Tag == nil {
						continue
					}
					tag := strings.Trim(fld.Tag.Value, "`")
					if m := regexp.MustCompile(`json:"([^",]+)`).FindStringSubmatch(tag); m != nil {
						fields[m[1]] = true
					}
				}
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if name.Name == "SummaryMessage" && i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok {
							message = strings.Trim(lit.Value, `"`)
						}
					}
				}
			}
			return true
		})
	}
	if len(fields) == 0 || message == "" {
		t.Fatalf("pipeline.Summary / pipeline.SummaryMessage not found in ../pipeline (fields %v, message %q)", fields, message)
	}
	return fields, message
}

// The PromQL of the dashboard and alerts names series the function and the worker serve on
// /metrics: every selector cdc_x{...} and every histogram of the fleet quantiles must be a family
// the Go code writes, or the tiles stay empty and the alerts never fire.
func TestPromQLNamesMatchMetrics(t *testing.T) {
	families := map[string]bool{}
	for _, dir := range []string{"../pipeline", "../pubsubpull", "../kafkasource", "../metrics"} {
		files, _ := filepath.Glob(dir + "/*.go")
		for _, p := range files {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`"(cdc_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
				families[m[1]] = true
			}
		}
	}
	if !families["cdc_commit_lag_seconds"] || !families["cdc_messages_total"] {
		t.Fatalf("Prometheus families not found in the Go sources: %v", families)
	}
	var used []string
	for name, src := range readTF(t, ".") {
		for _, m := range regexp.MustCompile(`(cdc_[a-z_]+)\{`).FindAllStringSubmatch(string(src), -1) {
			used = append(used, name+": "+m[1])
		}
		// local.fleet_quantile: histogram_quantile over cdc_${h}_seconds_bucket for each h listed.
		if m := regexp.MustCompile(`for h in \[([^\]]*)\][^\n]*\n[^\n]*cdc_\$\{h\}_seconds_bucket`).FindStringSubmatch(string(src)); m != nil {
			for _, h := range regexp.MustCompile(`"(\w+)"`).FindAllStringSubmatch(m[1], -1) {
				used = append(used, name+": cdc_"+h[1]+"_seconds_bucket")
			}
		}
	}
	if len(used) < 6 {
		t.Fatalf("found only %v in the PromQL of the .tf files", used)
	}
	for _, u := range used {
		series := u[strings.Index(u, " ")+1:]
		if !families[strings.TrimSuffix(series, "_bucket")] {
			t.Errorf("%s: no Go code serves a family %s on /metrics", u, strings.TrimSuffix(series, "_bucket"))
		}
	}
}

// Every setting of terraform.tfvars.example is a declared variable (terraform plan rejects an
// undeclared one in a .tfvars file), so the example a user copies works as written.
func TestTFVarsExampleIsDeclared(t *testing.T) {
	m := newModule(".")
	for name, src := range readTF(t, ".") {
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		m.declare(f.Body.(*hclsyntax.Body))
	}
	src, err := os.ReadFile("terraform.tfvars.example")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, "terraform.tfvars.example", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	attrs := f.Body.(*hclsyntax.Body).Attributes
	if len(attrs) < 10 {
		t.Fatalf("only %d settings in terraform.tfvars.example", len(attrs))
	}
	for name := range attrs {
		if !m.variables[name] {
			t.Errorf("terraform.tfvars.example sets %q, which variables.tf does not declare", name)
		}
	}
}
