# The same targets as Taskfile.yml. `make run` starts the server on its
# embedded defaults; `make test` runs every test.

GO        ?= go
BIN       ?= bin/nexus
# Tests need PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379; they
# skip the cases that need them when these are down, unless
# NEXUS_TEST_SERVICES=required (set by .ci/run), which turns a skip into a failure.
TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: run test bench lint build

run:
	$(GO) run ./cmd/nexus serve

test:
	$(GO) test $(TEST_FLAGS) ./...

bench:
	$(GO) run ./cmd/nexusbench run
	$(GO) test -run '^$$' -bench . -benchmem ./edge/ ./edge/bearer/

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o $(BIN) ./cmd/nexus
