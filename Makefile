# hostd: `make run` starts the daemon on the example config, `make test`
# installs what the tests need and runs them.

GO        ?= go
STATE     ?= $(CURDIR)/.state
CONFIG    ?= configs/hostd.example.yaml
BIN       ?= $(CURDIR)/bin/hostd
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# hostd is built static, without cgo: no package it links needs C (os/user
# and net use their pure-Go implementations), and without libc's mapping
# the daemon is about 1.3 MiB smaller in memory. Pure-Go os/user reads
# only /etc/passwd and /etc/group, not NSS modules (sssd, LDAP): where
# hostd.socket_group names such a group, build with BUILD_CGO=1. The
# race-detector test targets below still build with cgo, which -race needs.
BUILD_CGO ?= 0
GO_BUILD  ?= CGO_ENABLED=$(BUILD_CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS)'
# Packages whose tests run with the race detector. The backup engine's
# tests move gigabytes through the pipeline, where -race multiplies the run
# time; its concurrency is covered by the jobs service's race run.
RACE_PKGS ?= ./internal/... ./cmd/... ./configs/... ./pkg/audio/... ./pkg/containers/... ./pkg/netcfg/... ./pkg/metrics/... ./pkg/proxy/... ./pkg/backup/jobs/...
NORACE_PKGS ?= $(shell $(GO) list ./pkg/backup/... | grep -v /jobs)
# xray-core's vision code does pointer arithmetic that -race's checkptr
# rejects; the race detector itself stays on.
RACE_FLAGS ?= -race -gcflags=all=-d=checkptr=0
TEST_FLAGS ?= -count=1 -timeout 25m

.PHONY: all build run test test-deps test-race test-norace bench vet fmt clean package install check fuzz fuzz-short soak soak-short

all: build

build:
	$(GO_BUILD) -o $(BIN) ./cmd/hostd

# Runs hostd in the foreground on the example config, state under
# ./.state; the socket is this user's default, so `hostd status` in
# another shell finds it with no flags.
run: build
	@echo "hostd: state under $(STATE)/lib; in another shell: $(BIN) status"
	STATE_DIRECTORY=$(STATE)/lib $(BIN) run --config $(CONFIG)

# make package: dist/hostd_VERSION_ARCH.deb (binary, unit, conffile
# /etc/hostd/config.yaml, completions, man pages). make install: the same
# files under $(DESTDIR)$(PREFIX), the config only where there is none.
# Both run scripts/package.sh, which the systemd tests (configs/) also use
# to build the package they install in a booted Debian container.
PREFIX    ?= /usr/local

package: build
	HOSTD_BIN=$(BIN) VERSION=$(VERSION) GO=$(GO) ./scripts/package.sh deb

install: build
	HOSTD_BIN=$(BIN) VERSION=$(VERSION) GO=$(GO) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) ./scripts/package.sh install

test-deps:
	./scripts/install-test-deps.sh

test: test-deps vet check
	$(MAKE) test-norace
	$(MAKE) test-race
	$(MAKE) fuzz-short
	$(MAKE) soak-short

# Checks on the tree itself: no hostd package linked into the binary
# imports testing or httptest; every file formatted and its imports grouped
# as goimports does.
check:
	./scripts/check-no-test-code.sh
	GO=$(GO) ./scripts/check-fmt.sh

# Every native fuzz target for FUZZTIME each (committed corpora under each
# package's testdata/fuzz). `go test` alone replays the corpora; fuzz-short
# also runs the fuzzing engine for 2,000 executions per target, as CI does
# (a count, not a duration: see scripts/fuzz.sh).
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./scripts/fuzz.sh

fuzz-short:
	FUZZTIME=2000x GO=$(GO) ./scripts/fuzz.sh

test-race:
	$(GO) test $(RACE_FLAGS) $(TEST_FLAGS) $(RACE_PKGS)

test-norace:
	$(GO) test $(TEST_FLAGS) $(NORACE_PKGS)
	$(GO) test -buildmode=pie -run TestReleaseCodePages ./internal/codepages

vet:
	$(GO) vet ./...

# Every service on at once under load beside the daemons hostd replaces
# (docs/soak.md): 10 minutes, and the 2-minute version CI runs.
soak:
	bash bench/soak/run.sh

soak-short:
	SOAK_DURATION=2m bash bench/soak/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@for s in bench/*/run.sh; do echo "== $$s"; bash $$s || exit 1; done

fmt:
	GO=$(GO) ./scripts/check-fmt.sh >/dev/null || true
	$${XDG_CACHE_HOME:-$$HOME/.cache}/hostd-test/goimports-v0.53.0/goimports -local github.com/hostd/hostd -w $$(git ls-files '*.go')

clean:
	rm -rf bin .state dist
