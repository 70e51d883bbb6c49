# toolgate — run "make" or "make help" for the list of targets.

# Tool versions, pinned. Tools run with "go run tool@version", so nothing
# has to be installed by hand.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

GO           ?= go
BIN          := bin/toolgate
PLUGIN_OUT   := plugins/dist
# Test timeouts: a hung test fails the run instead of blocking CI.
TEST_TIMEOUT ?= 15m
RACE_TIMEOUT ?= 25m
# How long "make fuzz" runs each fuzz target, with how many workers (empty:
# GOMAXPROCS), and which targets (an extended regexp on their names).
FUZZTIME     ?= 10s
FUZZPARALLEL ?=
FUZZ         ?= .
# Extra arguments for "make run", e.g. make run ARGS="-log-level debug".
ARGS         ?=

WASM_ENV := GOOS=wasip1 GOARCH=wasm

# The TypeScript MCP client that cmd/toolgate's interop test runs with node.
TSCLIENT := cmd/toolgate/testdata/tsclient

.DEFAULT_GOAL := help
.PHONY: help build plugins tsclient-deps run test test-race bench fuzz lint check clean

help: ## Show this help
	@echo "Usage: make <target>"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the server to bin/toolgate
	$(GO) build -o $(BIN) ./cmd/toolgate

plugins: ## Build every plugins/<name>/ main package to plugins/dist/<name>.wasm
	@mkdir -p $(PLUGIN_OUT)
	@for dir in plugins/*/; do \
		name=$$(basename $$dir); \
		[ "$$name" = dist ] && continue; \
		pkg=$$($(WASM_ENV) $(GO) list -e -f '{{.Name}}' ./plugins/$$name 2>/dev/null); \
		[ "$$pkg" = main ] || continue; \
		echo "plugin $$name -> $(PLUGIN_OUT)/$$name.wasm"; \
		$(WASM_ENV) $(GO) build -buildmode=c-shared -o $(PLUGIN_OUT)/$$name.wasm ./plugins/$$name || exit 1; \
	done

# npm ci writes node_modules/.package-lock.json: when it is missing or older
# than package-lock.json, node_modules is reinstalled.
tsclient-deps: ## Install the TypeScript MCP client's pinned npm packages (when package-lock.json changed)
	@stamp=$(TSCLIENT)/node_modules/.package-lock.json; \
	if ! command -v npm >/dev/null 2>&1; then \
		echo "tsclient-deps: npm is not installed; TestTypeScriptClient will be skipped (it fails under CI)"; \
	elif [ ! -f $$stamp ] || [ $(TSCLIENT)/package-lock.json -nt $$stamp ]; then \
		echo "npm ci --no-audit --no-fund --prefix $(TSCLIENT)"; \
		npm ci --no-audit --no-fund --prefix $(TSCLIENT) && touch $$stamp; \
	fi

run: plugins build ## Build plugins and server, then serve http://localhost:8788 (development mode)
	./$(BIN) serve $(ARGS)

# The PostgreSQL tests start a throwaway cluster from the installed
# binaries (or use $$TOOLGATE_TEST_POSTGRES_URL); go test hides their skip
# message, so say it here when they cannot run.
define PG_NOTE
@if [ -z "$$TOOLGATE_TEST_POSTGRES_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
	echo "note: PostgreSQL is not installed, so the PostgreSQL store tests are skipped (Debian: apt-get install postgresql; or set TOOLGATE_TEST_POSTGRES_URL)"; fi
endef

test: plugins tsclient-deps ## Build plugins and the TypeScript client, then run every test
	$(PG_NOTE)
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

test-race: plugins tsclient-deps ## Run every test with the race detector
	$(PG_NOTE)
	$(GO) test -race -timeout $(RACE_TIMEOUT) ./...

# The benchmark harness's TypeScript peer, and extra flags for the harness,
# e.g. make bench BENCH_ARGS="-duration 10s -rounds 3" (see go run ./bench -h).
BENCH_PEER := bench/peer
BENCH_ARGS ?=

bench: plugins build ## Benchmark toolgate against the go-sdk floor and the TypeScript peer (bench/results/latest.md)
	@command -v npm >/dev/null 2>&1 || { echo "bench: Node.js and npm are needed for the TypeScript peer"; exit 1; }
	@stamp=$(BENCH_PEER)/node_modules/.package-lock.json; \
	if [ ! -f $$stamp ] || [ $(BENCH_PEER)/package-lock.json -nt $$stamp ]; then \
		echo "npm ci --no-audit --no-fund --prefix $(BENCH_PEER)"; \
		npm ci --no-audit --no-fund --prefix $(BENCH_PEER) && touch $$stamp || exit 1; \
	fi
	$(GO) build -o bin/bench ./bench
	./bin/bench $(BENCH_ARGS)

fuzz: ## Run each fuzz target for FUZZTIME (default 10s); FUZZ=regexp picks targets
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) FUZZ='$(FUZZ)' ./.ci/fuzz

lint: ## Run go vet and staticcheck (native, and wasip1 for sdk and plugins)
	$(GO) vet ./...
	$(WASM_ENV) $(GO) vet ./sdk/... ./plugins/...
	$(GO) run $(STATICCHECK) ./...

check: lint ## Everything a change must pass: fmt, vet, lint, tidy, wasip1 build, clean tree
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(WASM_ENV) $(GO) build ./sdk/... ./plugins/...
	git diff --exit-code

clean: ## Remove build output (bin/, plugins/dist/)
	rm -rf bin $(PLUGIN_OUT)
