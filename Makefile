# cloudsql-cache: `make run` runs the pipeline locally, `make test` tests it.
GO ?= go
PORT ?= 8080
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: test run services vet fuzz bench lint

## test: start the local servers if needed, then every test with the race detector
test: services
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## run: start Redis if needed and serve the push function on $(PORT)
run: services
	REDIS_URL=$(REDIS_URL) PORT=$(PORT) $(GO) run ./function/cmd

services:
	@bash scripts/services.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

## fuzz: run the decoder fuzzer for FUZZTIME (default 1m); new findings land in testdata/fuzz
FUZZTIME ?= 1m
fuzz:
	$(GO) test ./debezium -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

## bench: benchmarks that print figures
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## lint: tflint's built-in rules on the Terraform (tflint is built from source on first use)
TFLINT ?= $(shell $(GO) env GOPATH)/bin/tflint
lint: vet
	@test -x $(TFLINT) || (cd /tmp && GOFLAGS=-mod=mod $(GO) install github.com/terraform-linters/tflint@v0.64.0)
	$(TFLINT) --chdir=terraform
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; fi
