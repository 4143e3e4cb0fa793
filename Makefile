# fieldsync: offline-first sync server for field data collection.
# `make run` and `make test` are the whole set-up on a fresh machine.

GO      ?= go
BIN     := bin/fieldsync
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
FUZZTIME ?= 30s

.PHONY: build run test vet fmt-check deps-check bench fuzz clean

build:
	$(GO) build -trimpath -o $(BIN) ./server/cmd/fieldsync

run: build
	$(BIN) serve --addr $(ADDR) --data $(DATA)

## test: formatting, vet, the dependency direction, and the whole suite with the race detector.
test: fmt-check vet deps-check
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted: $$out"; exit 1; fi

## deps-check: syncproto uses the standard library only; gin lives in server/ only; bbolt in internal/store and syncproto/client only.
deps-check:
	@bad=$$($(GO) list -deps ./syncproto | grep -E '^[a-z0-9-]+\.[a-z]+/' || true); \
	if [ -n "$$bad" ]; then echo "syncproto imports non-standard packages: $$bad"; exit 1; fi
	@for p in $$($(GO) list ./internal/...); do \
		if $(GO) list -deps $$p | grep -q '^github.com/gin-gonic/gin$$'; then echo "$$p imports gin"; exit 1; fi; \
	done
	@for p in $$($(GO) list ./... | grep -v -e '/internal/store' -e '/syncproto/client'); do \
		if $(GO) list -f '{{join .Imports "\n"}}' $$p | grep -q '^go.etcd.io/bbolt$$'; then echo "$$p imports bbolt directly"; exit 1; fi; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodePush -fuzztime=$(FUZZTIME) ./syncproto

clean:
	rm -rf bin
