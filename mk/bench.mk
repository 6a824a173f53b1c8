# mk/bench.mk - benchmarks side by side with redis, nginx, nc and iperf3
# (issue 11; bench/README.md says what each workload measures).
#
#   make bench         bench/deps, release build of bottled and bottle into
#                      build/bench, the load generators, every workload against
#                      bottled and its peers (BENCH_REPS repetitions, default 3,
#                      each pair back to back): bench/results.md, bench/scaling.png
#   make bench-quick   one short run of each workload (under 2 minutes):
#                      build/bench/results-quick.md, build/bench/scaling-quick.png;
#                      never touches the committed results
#   make bench-tools   just build the generators (tests/system/test_bench_tools.py)
#
# BENCH_ARGS passes options to bench/run.py (e.g. BENCH_ARGS='--only fanout').
# The generators build with the project's warnings into build/bench/tools, a
# folder of their own whatever BUILD is (the ASan system run calls bench-tools
# too), so they never mix with the objects of the build under test.

BENCH_OUT    = build/bench
BENCH_TOOLS  = $(BENCH_OUT)/tools
BENCH_REPS  ?= 3
BENCH_CFLAGS = -std=c17 $(WARN) -O2 -g $(CFLAGS_EXTRA)
BENCH_LIB    = lib_bench lib_proto lib_hist
BENCH_PROGS  = bench-fanout bench-reqresp bench-conns

bench_lib_objs = $(patsubst %,$(BENCH_TOOLS)/%.o,$(BENCH_LIB))

bench-tools: $(patsubst %,$(BENCH_TOOLS)/%,$(BENCH_PROGS))

$(BENCH_TOOLS):
	mkdir -p $@

$(BENCH_TOOLS)/lib_%.o: bench/lib/%.c | $(BENCH_TOOLS)
	$(CC) -D_GNU_SOURCE -MMD -MP $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_TOOLS)/bench-%.o: bench/%.c | $(BENCH_TOOLS)
	$(CC) -D_GNU_SOURCE -MMD -MP -Ibench $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_TOOLS)/bench-%: $(BENCH_TOOLS)/bench-%.o $(bench_lib_objs)
	$(CC) $(BENCH_CFLAGS) $^ -o $@

# Release binaries of the project into build/bench (a sub-make with its own
# BUILD, so build/ of the other targets is left alone).
bench-build:
	$(MAKE) --no-print-directory BUILD=$(BENCH_OUT) CFLAGS='-O2 -g' \
	  $(BENCH_OUT)/bottled $(BENCH_OUT)/bottle

bench: bench-tools bench-build
	bench/deps
	bench/run.py --reps $(BENCH_REPS) --out bench/results.md --plot bench/scaling.png \
	  --bin $(BENCH_OUT) --tools $(BENCH_TOOLS) $(BENCH_ARGS)

bench-quick: bench-tools bench-build
	bench/deps
	bench/run.py --quick --out $(BENCH_OUT)/results-quick.md \
	  --plot $(BENCH_OUT)/scaling-quick.png --bin $(BENCH_OUT) --tools $(BENCH_TOOLS) \
	  $(BENCH_ARGS)

.PHONY: bench bench-quick bench-tools bench-build

-include $(wildcard $(BENCH_TOOLS)/*.d)
