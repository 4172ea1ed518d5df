# openivs — see README.md. `make test` is exactly what .ci/run calls.

GO      ?= go
BIN     := bin/openivs
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build run test bench fuzz deps clean web

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/openivs

run: build
	./scripts/deps.sh --runtime
	./$(BIN) serve

deps:
	./scripts/deps.sh

# Rebuilds the web player bundle (web/dist, embedded in the binary).
web:
	./web/build.sh

test: deps
	./web/check-bundle.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Runs every Fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

clean:
	rm -rf bin
