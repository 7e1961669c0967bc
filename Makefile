# cloudsql-cache: `make run` runs the pipeline locally, `make test` tests it.
GO ?= go
PORT ?= 8080
# make run's cache: DB 15 of the local Redis, kept for local runs (the run deletes its prefix's keys
# there first). Not $REDIS_URL, which may name a Redis that holds other data.
RUN_REDIS ?= redis://127.0.0.1:6379/15
# make run's MySQL: the run creates its tables in database `localrun` there and syncs the column
# registry from them (as `cachectl schema sync` does in the cloud); empty types from the config.
RUN_MYSQL ?= root@tcp(127.0.0.1:3306)/

.PHONY: test run services vet fuzz bench bench-go lint tf-test

## test: start the local servers if needed, then every test with the race detector
test: services
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## run: stream generated Debezium changes end to end (generator -> in-process Pub/Sub -> push
## bridge -> the push function -> Redis DB 15, prefix local:) with a live progress line, typed by
## the column registry synced from the run's tables in the local MariaDB (RUN_MYSQL); Ctrl-C
## stops publishing, drains, prints the summary and exits 0. EVENTS=N stops once N changes are
## applied; DELIVERY=pull goes through the streaming-pull worker instead of push, DELIVERY=kafka
## through the Kafka worker on a Kafka fake (kfake); CACHE=memcached writes to the memcached at
## MEMCACHE_ADDR instead of Redis (key: and types: in the cache config, no registry; rejected
## messages parked in a topic of the run's fake); RUN_FLAGS passes more flags.
EVENTS ?= 0
DELIVERY ?= push
CACHE ?= redis
MEMCACHE_ADDR ?= 127.0.0.1:11211
run: services
	$(GO) run ./cmd/cachectl run -cache $(CACHE) -redis $(RUN_REDIS) -memcache $(MEMCACHE_ADDR) -mysql '$(RUN_MYSQL)' -events $(EVENTS) -delivery $(DELIVERY) $(RUN_FLAGS)

services:
	@bash scripts/services.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

## fuzz: run each decoder fuzzer (Debezium events, push envelopes, base64, column registry entries) for FUZZTIME (default 1m); new findings land in testdata/fuzz
FUZZTIME ?= 1m
fuzz:
	$(GO) test ./debezium -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)
	$(GO) test ./handler -run '^$$' -fuzz FuzzParseEnvelope -fuzztime $(FUZZTIME)
	$(GO) test ./handler -run '^$$' -fuzz FuzzDecodeBase64 -fuzztime $(FUZZTIME)
	$(GO) test ./cdc -run '^$$' -fuzz FuzzParseTableSchema -fuzztime $(FUZZTIME)

## bench: end-to-end benchmark (function vs naive handler vs EVALSHA alone, the pull and Kafka
## workers, on the machine's Redis); prints the bench: lines and updates the table in
## docs/performance.md; CACHE=memcached adds the function over a private memcached -M
## (bench-memcached:); BENCH_FLAGS passes flags (-doc '', -pull-cpuprofile FILE, ...)
bench: services
	$(GO) run ./bench/cmd/bench -cache $(or $(CACHE),redis) $(BENCH_FLAGS)

## bench-go: the go test benchmarks of every package
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## lint: tflint's built-in rules on the Terraform (tflint is built from source on first use), and
## `terraform validate` + the mocked plans of terraform/tests offline through TF_CHECK when the
## locally built providers are in TF_PROVIDERS (online, `make tf-test` does the same)
TFLINT ?= $(shell $(GO) env GOPATH)/bin/tflint
TF_CHECK ?= /work/shared/tools/tf-check
TF_PROVIDERS ?= $(HOME)/.cache/tf-providers
lint: vet
	@test -x $(TFLINT) || (cd /tmp && GOFLAGS=-mod=mod $(GO) install github.com/terraform-linters/tflint@v0.64.0)
	$(TFLINT) --chdir=terraform
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; fi
	@if [ -x $(TF_CHECK) ] && [ -x $(TF_PROVIDERS)/terraform-provider-google ] && [ -x $(TF_PROVIDERS)/terraform-provider-random ]; then \
		PROVIDER_DIR=$(TF_PROVIDERS) $(TF_CHECK) $(CURDIR); \
	else echo "lint: no offline providers in $(TF_PROVIDERS): terraform validate and terraform test skipped (online: make tf-test)"; fi

## tf-test: terraform validate and the mocked plans of terraform/tests/*.tftest.hcl, with the
## providers downloaded by terraform init (needs the registry; no credentials, no API calls)
tf-test:
	cd terraform && terraform init -backend=false -input=false && terraform validate && terraform test

## bench-read: the read path on this machine's Redis and MariaDB: open loop at -rate (5,000/s: hits, DB direct), then closed loop (hits, fill=lease, fill=none, DB direct); CACHE=memcached reads memcached at MEMCACHE_ADDR (default 127.0.0.1:11211) instead; BENCHREAD_FLAGS passes flags (-dsn, -redis, -rate, -reads, ...)
BENCH_READ_CACHE = $(or $(CACHE),redis)
bench-read: services
	$(GO) run ./cmd/benchread -cache $(BENCH_READ_CACHE) -memcache $(MEMCACHE_ADDR) $(BENCHREAD_FLAGS)
