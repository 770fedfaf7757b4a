# graphkeep — build, test, demo. `make test` installs what it needs (the
# MinIO image for the integration tests is built from source with `go
# install`; no container registry is used).

GO            ?= go
BIN           := bin/graphkeep
# --version prints this: the commit (or tag) the binary was built from.
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS       := -X main.version=$(VERSION)
MINIO_MODULE  := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_IMAGE   ?= graphkeep/minio:20260212201848
CACHE         := .cache

# Tests start MinIO with testcontainers: no reaper (its image cannot be
# pulled) and published ports on loopback.
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE ?= 127.0.0.1
export GRAPHKEEP_MINIO_IMAGE := $(MINIO_IMAGE)
# Tests never ask a cloud metadata service for credentials.
export AWS_EC2_METADATA_DISABLED := true

.PHONY: all build test test-setup test-tools test-unit lint fuzz demo bench bench-scale minio-image modules rclone clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/graphkeep

## test: every test, the MinIO and fake-GCS suites included, then a short
## run of each fuzz target (seeds are in the tests). On a fresh machine the
## set-up runs side by side: apt-get and the module downloads (network) while
## MinIO compiles (CPU).
test: test-setup lint
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

test-setup:
	@$(MAKE) --no-print-directory -j3 minio-image test-tools modules

## modules: download graphkeep's Go modules (go vet and go test would, one
## after the other).
modules:
	@$(GO) mod download

## fuzz: each target for a number of inputs, not a time: with a duration
## (-fuzztime 5s) Go 1.26's fuzz coordinator can race its own deadline on a
## busy machine and fail a target with a bare "context deadline exceeded"
## (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME=1m (or 100000x) runs
## every target for that long instead.
FUZZTIME ?=
fuzz:
	@set -e; for t in \
		FuzzValidate:./core/lightrag/:20000x \
		FuzzDecode:./core/repo/:3000x \
		FuzzConfig:./core/repo/:1000x \
		FuzzIDValidators:./core/repo/:2000x \
		FuzzSnapshotIDTime:./core/repo/:2000x \
		FuzzRequestBodies:./api/:600x; do \
		name=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; budget=$${FUZZTIME:-$${rest#*:}}; \
		echo "$(GO) test -run '^\$$' -fuzz '^$$name\$$' -fuzztime $$budget $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget $$pkg; \
	done

## test-tools: Debian's chromium (the dashboard's browser test),
## prometheus (promtool, for the alerting rules' tests) and postgresql-15
## (the PostgreSQL graphs' tests start it as a plain process), installed
## when missing.
test-tools:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql-15"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (apt-get)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## test-unit: the tests that need no Docker.
test-unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## minio-image: builds the MinIO test image once; fast when it exists.
minio-image:
	@if docker image inspect $(MINIO_IMAGE) >/dev/null 2>&1; then \
		echo "MinIO image $(MINIO_IMAGE) present"; \
	else \
		set -e; \
		command -v docker >/dev/null || { echo "docker is not installed: the MinIO integration tests need a Docker engine"; exit 1; }; \
		echo "building MinIO (go install: about 7 minutes on 2 cores, once)"; \
		mkdir -p $(CACHE)/minio; \
		CGO_ENABLED=0 GOBIN=$(CURDIR)/$(CACHE)/minio $(GO) install $(MINIO_MODULE); \
		cp integration/minio/Dockerfile $(CACHE)/minio/Dockerfile; \
		docker build -q -t $(MINIO_IMAGE) $(CACHE)/minio; \
	fi

## demo: graphkeep end to end on local folder storage (see integration/demo/demo.sh).
demo: build
	@integration/demo/demo.sh

RESTIC := $(CACHE)/bin/restic
MINIO_BIN := $(CACHE)/minio/minio

$(RESTIC):
	GOBIN=$(CURDIR)/$(CACHE)/bin $(GO) install github.com/restic/restic/cmd/restic@v0.18.1

# kopia 0.21.1: `go install ...@v0.21.1` trips over the module proxy's
# version list, so it is built inside a throwaway module that requires it.
KOPIA := $(CACHE)/bin/kopia
$(KOPIA):
	rm -rf $(CACHE)/kopia-build && mkdir -p $(CACHE)/kopia-build $(CACHE)/bin
	cd $(CACHE)/kopia-build && printf 'module kopiabuild\n\ngo 1.26\n' > go.mod && \
		GOFLAGS=-mod=mod $(GO) get github.com/kopia/kopia@v0.21.1 && \
		CGO_ENABLED=0 $(GO) build -o $(CURDIR)/$(KOPIA) github.com/kopia/kopia

$(MINIO_BIN):
	mkdir -p $(CACHE)/minio
	CGO_ENABLED=0 GOBIN=$(CURDIR)/$(CACHE)/minio $(GO) install $(MINIO_MODULE)

# rclone (Debian's package) for the replication comparison.
rclone:
	@command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone; }

## bench: Go micro-benchmarks; graphkeep against restic on ~550 MB of
## LightRAG-shaped data; replication against rclone copy (local folder and
## MinIO on loopback); graphkeep, restic and kopia on a local folder, MinIO
## on loopback and MinIO behind a 15 ms-each-way toxiproxy; graphkeep alone
## on ~2.2 GB for memory scaling.
## Needs about 8 GB of free disk under .cache/bench.
bench: build $(RESTIC) $(KOPIA) $(MINIO_BIN) rclone
	$(GO) test -run '^$$' -bench . -benchtime 3x ./core/...
	$(GO) run ./integration/bench -graphkeep $(BIN) -restic $(RESTIC) -kopia $(KOPIA) -minio $(MINIO_BIN)

## bench-scale: graphkeep at scale, on a local folder and on MinIO: 10 GB in
## 3 graphs, 100 graphs, 10,000 snapshots, 1,000,000 chunks; time, peak RSS
## and requests of backup, no-change backup, snapshots, restore, prune and
## replicate. Not part of make test: it takes about an hour and needs about
## 40 GB of free disk under .cache/bench. Smaller: make bench-scale
## SCALE_FLAGS="-big-gb 2 -chunks 200000 -minio-chunks 50000".
bench-scale: build $(MINIO_BIN)
	$(GO) run ./integration/bench -scale -graphkeep $(BIN) -minio $(MINIO_BIN) $(SCALE_FLAGS)

clean:
	rm -rf bin $(CACHE)
