# fieldsync: offline-first sync server for field data collection.
# `make run` and `make test` are the whole set-up on a fresh machine.

GO      ?= go
BIN     := bin/fieldsync
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
FUZZTIME ?= 30s
# Fuzz targets, as package:Target.
FUZZ_TARGETS := ./syncproto:FuzzDecodePush ./syncproto:FuzzScanValue ./syncproto:FuzzStr ./syncproto:FuzzItemScan ./syncproto:FuzzPushScan ./syncproto:FuzzCanonicalScan ./syncproto:FuzzReadItem ./syncproto:FuzzNewFresh ./syncproto:FuzzJoin ./syncproto:FuzzCanonical ./syncproto:FuzzCanonicalNumber ./internal/records:FuzzParseCursor ./internal/store:FuzzDecodeRecord ./internal/loadgen:FuzzParsePage

.PHONY: build run test vet lint fmt-check deps-check bench fuzz fuzz-smoke crashtest demo clean

build:
	$(GO) build -trimpath -o $(BIN) ./server/cmd/fieldsync

run: build
	$(BIN) serve --addr $(ADDR) --data $(DATA)

## test: formatting, vet, the dependency direction, and the whole suite with the race detector.
test: fmt-check vet lint deps-check
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory fuzz-smoke

vet:
	$(GO) vet ./...

## lint: staticcheck, pinned, fetched through the Go module proxy.
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted: $$out"; exit 1; fi

## deps-check: syncproto uses the standard library only; gin lives in server/ only; bbolt in internal/store, syncproto/client and internal/loadgen (which measures bbolt's raw speed) only.
deps-check:
	@bad=$$($(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./syncproto | grep -v '^github.com/fieldsync/fieldsync/syncproto$$' || true); \
	if [ -n "$$bad" ]; then echo "syncproto imports non-standard packages: $$bad"; exit 1; fi
	@for p in $$($(GO) list ./internal/...); do \
		if $(GO) list -deps $$p | grep -q '^github.com/gin-gonic/gin$$'; then echo "$$p imports gin"; exit 1; fi; \
	done
	@for p in $$($(GO) list ./... | grep -v -e '/internal/store' -e '/syncproto/client' -e '/internal/loadgen'); do \
		if $(GO) list -f '{{join .Imports "\n"}}' $$p | grep -q '^go.etcd.io/bbolt$$'; then echo "$$p imports bbolt directly"; exit 1; fi; \
	done

## bench: Go benchmarks (push over HTTP, export of 100k records), then the load generator against the real binary.
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	$(BIN) bench --out bench.json

## fuzz: every fuzz target for FUZZTIME each (default 30s; FUZZTIME=5m make fuzz for a long run).
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; done

## fuzz-smoke: every fuzz target for 30,000 inputs, a few seconds (part of make test). A count, not a
## duration: Go 1.26's fuzzer can fail a run with "context deadline exceeded" as a duration ends
## (golang/go#75804, fixed in Go 1.27), which would make make test flaky.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=30000x

## crashtest: kill -9 the real server at random moments under concurrent pushes, 20 cycles; prints losses (must be 0).
crashtest:
	FIELDSYNC_CRASH_CYCLES=20 $(GO) test -count=1 -v -run='^TestCrashCycles$$' -timeout 30m ./internal/e2e | grep -E '^(crashtest:|--- |ok|FAIL|PASS)'

## demo: a scripted field story on a temporary server: capture, conflict, resolution, review, export.
demo: build
	$(BIN) demo

clean:
	rm -rf bin
