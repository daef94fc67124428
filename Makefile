# shardstack: the targets README.md and .ci/run use.
GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZ_TARGETS := FuzzEthernet FuzzARP FuzzIPv4 FuzzIPv6 FuzzTCP FuzzTCPOptions FuzzReceivePath FuzzConnection FuzzICMPv4
FUZZCOVER ?= fuzzcover.out

.PHONY: test test-dpdk demo bench fuzz fuzzcover lint profile profile-loss fmtcheck vet clean

## test: gofmt check, go vet, every test under the race detector (fuzz targets run their seed corpus)
test: fmtcheck vet
	$(GO) test -race -count=1 ./...

## test-dpdk: the DPDK backend (needs libdpdk-dev and pkg-config, else it skips): build and vet with -tags dpdk, then its tests under the race detector
test-dpdk:
	@if ! pkg-config --exists libdpdk 2>/dev/null; then \
		echo "test-dpdk: skipped: libdpdk not found by pkg-config (apt-get install libdpdk-dev pkg-config)"; exit 0; fi; \
	set -e; \
	echo "test-dpdk: DPDK $$(pkg-config --modversion libdpdk)"; \
	$(GO) build -tags dpdk ./...; \
	$(GO) vet -tags dpdk ./...; \
	$(GO) test -race -count=1 -tags dpdk ./pkg/dpdkshim/dpdk/ ./internal/link/; \
	$(GO) test -race -count=1 -tags dpdk -run '^TestDPDK_' ./cmd/shardstack/

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## demo: two stacks in one process open, use and close connections for about 10 s
demo:
	$(GO) run ./cmd/shardstack demo

## bench: every go test -bench harness (compare runs with benchstat)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./bench/ ./pkg/...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./fuzz/run.sh $(FUZZ_TARGETS)

## fuzzcover: how much of pkg/tcp the fuzz targets' seed corpora reach (what make test runs of them)
fuzzcover:
	$(GO) test -count=1 -coverpkg=./pkg/tcp/ -coverprofile=$(FUZZCOVER) ./fuzz/
	@$(GO) tool cover -func=$(FUZZCOVER) | tail -1
	@echo "per function: go tool cover -func=$(FUZZCOVER); in a browser: go tool cover -html=$(FUZZCOVER)"

## lint: gofmt, go vet and staticcheck (installed from the Go module proxy)
lint: fmtcheck vet
	$(GO) run $(STATICCHECK) ./...
	@if pkg-config --exists libdpdk 2>/dev/null; then $(GO) vet -tags dpdk ./... && $(GO) run $(STATICCHECK) -tags dpdk ./...; fi

## profile: CPU and heap profiles of the server handshake benchmark (bench/*.pprof)
profile:
	$(GO) test -run '^$$' -bench 'BenchmarkServerHandshake$$' -benchtime 3s \
		-cpuprofile bench/cpu.pprof -memprofile bench/mem.pprof -o bench/bench.test ./bench/
	@echo "go tool pprof -top bench/bench.test bench/cpu.pprof"

## profile-loss: CPU profile of BenchmarkLoss at LOSS (1%, 5%, or 0%) data loss, 10 flows x 1 MiB (bench/loss.pprof)
LOSS ?= 1%
profile-loss:
	$(GO) test -run '^$$' -bench 'BenchmarkLoss$$/loss=$(LOSS)$$' -benchtime 3x \
		-cpuprofile bench/loss.pprof -o bench/bench.test ./bench/
	@echo "go tool pprof -top bench/bench.test bench/loss.pprof"

clean:
	rm -f bench/*.pprof bench/bench.test $(FUZZCOVER)
