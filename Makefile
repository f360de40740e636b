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
.PHONY: help build build-arm64 build-armv7 run test test-deps field lint fmt vet proto bench attack sim clean

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
	REDPANDA_JVM_TEST=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

field: ## only the field-scenario suite (field/): real nodes and clients as two homes and their friends use them; prints its figures
	$(GO) test -count=1 -v -timeout $(TEST_TIMEOUT) ./field/

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

# The phone side (docs/MOBILE.md): gobind's bindings of mobile/redpanda,
# the same binding built for a desktop JVM (what TestJavaPhones builds), and
# the Android and iOS libraries (gomobile bind; need the Android SDK and
# NDK, or macOS with Xcode; not run by `make test`).
.PHONY: mobile mobile-test mobile-jni mobile-size aar xcframework
MOBILE_DIR    ?= dist/mobile
MOBILE_ARCH   ?= $(shell $(GO) env GOARCH)
MOBILE_CC     ?=
ANDROID_API   ?= 24
MOBILE_TOOLS  := $(CURDIR)/$(BIN)/tools

mobile: ## gobind's Java and Objective-C bindings of mobile/redpanda into dist/mobile/gobind/
	rm -rf $(MOBILE_DIR)/gobind
	@mkdir -p $(MOBILE_DIR)
	@# its own module, so that `go vet ./...` and `go test ./...` leave the generated Go alone
	@printf 'module redpanda.invalid/mobile-output\n' > $(MOBILE_DIR)/go.mod
	$(GO) run golang.org/x/mobile/cmd/gobind -lang=go,java,objc -outdir $(MOBILE_DIR)/gobind ./mobile/redpanda
	@! grep -rn 'skipped' $(MOBILE_DIR)/gobind || { echo "gobind skipped the above"; exit 1; }

mobile-test: test-deps ## only the phone side's tests, with the JVM test (TestJavaPhones: the Java binding against a real homenode; make test runs them too)
	REDPANDA_JVM_TEST=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./mobile/... ./internal/nonetlink/

mobile-jni: mobile ## the binding for a desktop JVM: dist/mobile/jni/linux-ARCH/{libgojni.so,classes} (MOBILE_ARCH=arm64 MOBILE_CC=aarch64-linux-gnu-gcc to cross-build)
	mobile/jvm/build.sh $(MOBILE_DIR)/gobind $(MOBILE_DIR)/jni/linux-$(MOBILE_ARCH) $(MOBILE_ARCH) $(MOBILE_CC)

mobile-size: mobile ## the arm64 library's size (the AAR's libgojni.so, stripped) beside the redpanda CLI's for arm64, built in the same run (needs gcc-aarch64-linux-gnu)
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "mobile-size: no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1; }
	mobile/jvm/build.sh $(MOBILE_DIR)/gobind $(MOBILE_DIR)/jni/linux-arm64 arm64 aarch64-linux-gnu-gcc >/dev/null
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(MOBILE_DIR)/size/redpanda ./cmd/redpanda
	@lib=$$(stat -c %s $(MOBILE_DIR)/jni/linux-arm64/libgojni.so); cli=$$(stat -c %s $(MOBILE_DIR)/size/redpanda); \
	  gz=$$(gzip -9c $(MOBILE_DIR)/jni/linux-arm64/libgojni.so | wc -c); \
	  echo "libgojni.so (linux/arm64, c-shared, stripped): $$lib bytes, $$gz gzipped"; \
	  echo "redpanda CLI (linux/arm64, static, stripped):  $$cli bytes"; \
	  awk -v l=$$lib -v c=$$cli 'BEGIN { printf "library/CLI: %.2f\n", l/c }'

$(MOBILE_TOOLS)/gomobile: go.mod
	GOBIN=$(MOBILE_TOOLS) $(GO) install golang.org/x/mobile/cmd/gomobile golang.org/x/mobile/cmd/gobind

aar: $(MOBILE_TOOLS)/gomobile ## Android library dist/mobile/redpanda.aar (gomobile bind; needs the Android SDK and NDK: ANDROID_HOME, ANDROID_NDK_HOME)
	@mkdir -p $(MOBILE_DIR)
	PATH="$(MOBILE_TOOLS):$$PATH" gomobile bind -target=android -androidapi $(ANDROID_API) -trimpath -ldflags '$(LDFLAGS)' \
	  -o $(MOBILE_DIR)/redpanda.aar ./mobile/redpanda

xcframework: $(MOBILE_TOOLS)/gomobile ## iOS framework dist/mobile/Redpanda.xcframework (gomobile bind; needs macOS with Xcode)
	@mkdir -p $(MOBILE_DIR)
	PATH="$(MOBILE_TOOLS):$$PATH" gomobile bind -target=ios,iossimulator -iosversion 15.0 -trimpath -ldflags '$(LDFLAGS)' \
	  -o $(MOBILE_DIR)/Redpanda.xcframework ./mobile/redpanda

# Packaging (systemd/, packaging/, image/). Image build, bundles, the QEMU
# tests and the apt repository are slow (minutes) and not part of `make
# test`; each installs what it needs from Debian when run as root.
.PHONY: deb image image-test bundle update-test repo repo-test systemd-verify
ARCH  ?= arm64
BOARD ?= rpi-arm64
IMAGE_DIR ?= dist/image
# A directory of NAME.pub release keys the image trusts; default: the
# development key (update/keys), which anyone can sign with.
UPDATE_KEYS ?=
# The key a bundle or the apt repository is signed with. Releases: an
# offline key, never in the repository (docs/UPDATES.md).
SIGNING_KEY ?= update/keys/dev-release.key
REPO_KEY ?=
BUNDLE_DIR ?= dist/bundle
REPO_DIR ?= dist/repo

deb: ## build dist/homenode_VERSION_ARCH.deb and the client's dist/redpanda-client_VERSION_ARCH.deb (ARCH=arm64|armhf|amd64)
	packaging/build-deb.sh -a $(ARCH) -o dist
	packaging/build-client-deb.sh -a $(ARCH) -o dist

image: ## build the A/B SD-card image dist/image/homenode-$(BOARD).img(.xz) and its manifest (slow; root or subuids)
	@scripts/install-image-deps.sh image
	@deb=$$(packaging/build-deb.sh -a arm64 -o dist | tail -1) && \
	  nice -n 10 image/build.sh -b $(BOARD) -d "$$deb" -o $(IMAGE_DIR) $(if $(UPDATE_KEYS),-k $(UPDATE_KEYS))

image-test: ## boot the built image in QEMU with its real boot loader (U-Boot) and pair with it through a forwarded port (slow)
	@scripts/install-image-deps.sh qemu
	nice -n 10 image/test.sh -i $(IMAGE_DIR)/homenode-$(BOARD).img

bundle: ## signed update bundle of the root slot: dist/bundle/homenode-$(BOARD)-VERSION.rpb (SIGNING_KEY=release.key)
	@scripts/install-image-deps.sh image
	@deb=$$(packaging/build-deb.sh -a arm64 -o dist | tail -1) && v=$$(dpkg-deb -f "$$deb" Version) && \
	  nice -n 10 image/build.sh -S -b $(BOARD) -d "$$deb" -o $(IMAGE_DIR) $(if $(UPDATE_KEYS),-k $(UPDATE_KEYS)) && \
	  mkdir -p $(BUNDLE_DIR) && \
	  nice -n 10 $(GO) run ./cmd/rpupdate bundle -image $(IMAGE_DIR)/homenode-$(BOARD)-root.ext4 -version "$$v" \
	    -compatible $(BOARD) -key $(SIGNING_KEY) -o $(BUNDLE_DIR)/homenode-$(BOARD)-$$v.rpb

update-test: ## A/B updates in QEMU with the real boot loader: commit, rollbacks, watchdog, power cuts, refusals (slow, ~1 h)
	@scripts/install-image-deps.sh image qemu
	nice -n 10 image/update-test.sh

repo: ## signed apt repository of the .debs in dist/ for Raspberry Pi OS / Debian: dist/repo (REPO_KEY=GPG key ID)
	@scripts/install-image-deps.sh repo
	packaging/build-repo.sh -o $(REPO_DIR) $(if $(REPO_KEY),-k $(REPO_KEY)) $(wildcard dist/homenode_*.deb dist/redpanda-client_*.deb)

repo-test: ## install version N from a local signed repository in a Debian chroot, upgrade to N+1, check the data is kept (slow)
	@scripts/install-image-deps.sh repo
	nice -n 10 packaging/repo-test.sh

systemd-verify: ## systemd-analyze verify and security on the units
	$(GO) test -count=1 -run 'TestUnits|TestUpdateUnits|TestServiceDirectives' -v ./systemd/
