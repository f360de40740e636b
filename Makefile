# redPanda Home Node. `make help` lists the targets.

GO        ?= go
BIN       ?= bin
DATA_DIR  ?= .homenode
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/redpanda-p2p/homenode/internal/version.Version=$(VERSION)
GOBUILD   := $(GO) build -trimpath -ldflags '$(LDFLAGS)'
STATICCHECK_VERSION ?= v0.8.2
TEST_TIMEOUT ?= 14m

.DEFAULT_GOAL := help
.PHONY: help build build-arm64 build-armv7 run test test-deps lint fmt vet proto bench attack sim clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_.-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build every command for this machine into bin/
	$(GOBUILD) -o $(BIN)/ ./cmd/...

build-arm64: ## cross-build every command for 64-bit ARM (Pi 3/4/5) into bin/linux-arm64/
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(BIN)/linux-arm64/ ./cmd/...

build-armv7: ## cross-build every command for 32-bit ARMv7 (Pi OS armhf) into bin/linux-armv7/
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GOBUILD) -o $(BIN)/linux-armv7/ ./cmd/...

run: ## run a home node here: its own data directory ($(DATA_DIR)), no root, no router; prints the pairing QR
	$(GO) run ./cmd/homenode run --config /dev/null --data-dir $(DATA_DIR) --admin-socket $(DATA_DIR)/admin.sock --set upnp=false

test: test-deps ## run every test (installs what the tests need first)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-deps: ## install the tools the tests drive (chromium, zbar, miniupnpd, ...); idempotent
	@scripts/install-test-deps.sh

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt: ## format the Go sources
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

proto: ## regenerate the protobuf code (needs protoc; installs protoc-gen-go)
	@command -v protoc >/dev/null || { echo "installing protobuf-compiler"; apt-get install -y -qq protobuf-compiler; }
	GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	PATH="$(CURDIR)/$(BIN)/tools:$$PATH" $(GO) generate ./node/wire/...

bench: ## short run of every benchmark (not part of make test)
	$(GO) run ./cmd/rpbench -short

attack: ## the adversarial suite of issue 19 at full size against bin/homenode (docs/SECURITY.md; ~5 min, root for the memory cgroup)
	$(GOBUILD) -o $(BIN)/ ./cmd/homenode ./cmd/rpattack
	nice $(BIN)/rpattack -homenode $(BIN)/homenode -scale large $(ATTACK_FLAGS)

SIM_N   ?= 100,300,1000
SIM_OUT ?= docs/scale
sim: ## simulate 100, 300 and 1,000 home nodes (SIM_N) in virtual time; report and charts into docs/scale (SIM_OUT); slow, see docs/SCALE.md
	nice -n 10 $(GO) run ./cmd/rpsim -n $(SIM_N) -out $(SIM_OUT)

clean: ## remove build outputs
	rm -rf $(BIN) dist

# Packaging (systemd/, packaging/, image/). Image build and boot test are
# slow (minutes) and not part of `make test`.
.PHONY: deb image image-test systemd-verify
ARCH  ?= arm64
BOARD ?= rpi-arm64
IMAGE_DIR ?= dist/image

deb: ## build dist/homenode_VERSION_ARCH.deb (ARCH=arm64|armhf|amd64)
	packaging/build-deb.sh -a $(ARCH) -o dist

image: ## build the SD-card image dist/image/homenode-$(BOARD).img(.xz) and its manifest (slow; root or subuids)
	@deb=$$(packaging/build-deb.sh -a arm64 -o dist | tail -1) && \
	  nice -n 10 image/build.sh -b $(BOARD) -d "$$deb" -o $(IMAGE_DIR)

image-test: ## boot the built image in qemu-system-aarch64 and pair with it through a forwarded port (slow)
	nice -n 10 image/test.sh -i $(IMAGE_DIR)/homenode-$(BOARD).img -k $(IMAGE_DIR)/vmlinuz -r $(IMAGE_DIR)/initrd.img

systemd-verify: ## systemd-analyze verify and security on the units
	$(GO) test -count=1 -run 'TestUnits' -v ./systemd/
