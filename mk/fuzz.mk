# mk/fuzz.mk - libFuzzer targets (tests/fuzz), built with clang into build-fuzz/.
#
#   fuzz_tpkt     tpkt_decode: a reference decoder vs. one decoder fed whole vs.
#                 one fed in chunks; max_len clamping, sticky errors, zero copy
#   fuzz_line     line_decode: telnet IAC removal and the line cap (16, 65536 or
#                 small), reference vs. whole vs. chunks, line_decoder_pending
#   fuzz_framing  framer_decode for both framings against the bare decoders, and
#                 framing_encode: a TPKT frame decodes back to head+body, line
#                 encoding gives one "head line" per line of the body
#   fuzz_cmd      cmd_split, cmd_find and cmd_execute over a stand-in command
#                 table; args_next/args_quote round trips
#   fuzz_names    nick_check/nick_fold (against a UTF-8 reference; fold is
#                 idempotent and bounded), wire_name_valid/wire_token_valid
#                 against the documented rules
#   fuzz_client   client_parse, the renderers (no raw control characters out),
#                 client_greeting_nick, and client_next/client_next_frame on a
#                 struct client fed through a socketpair
#   fuzz_server   the whole server: one struct server (no listeners) in a
#                 temporary folder; each input is one connection adopted over a
#                 socketpair, its bytes written in chunks, then closed; the
#                 connection must be reaped ("ghost connection" otherwise)
#
#   make fuzz            build, run fuzz-regress, then fuzz each target for
#                        FUZZ_SECONDS (default 60), FUZZ_JOBS (2) at a time, on
#                        a scratch corpus in build-fuzz/corpus/<target> seeded
#                        with tests/fuzz/corpus/<target> (read only). Fails on
#                        any crash, leak or timeout and says where the input is.
#   make fuzz-regress    each target once over every committed corpus file
#   make fuzz-build      just build
#   FUZZ_TARGETS="fuzz_tpkt fuzz_line" restricts either to some targets.
#
# Crash inputs land in build-fuzz/artifacts/; the log of a run is in
# build-fuzz/log/<target>.log. A crash worth keeping goes into
# tests/fuzz/corpus/<target>/regress-<what> once minimized (-minimize_crash=1).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
FUZZ_DIR      = build-fuzz
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -std=c17 $(WARN) -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) $(CFLAGS_EXTRA)
FUZZ_OPTS    ?= -timeout=10 -rss_limit_mb=2048
FUZZ_ENV      = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_abort=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FUZZ_TARGETS ?= fuzz_server fuzz_tpkt fuzz_line fuzz_framing fuzz_cmd fuzz_names fuzz_client \
                fuzz_cluster_event

# What each target links from src/ (compiled with coverage into build-fuzz/obj).
FUZZ_DEPS_fuzz_tpkt    = tpkt
FUZZ_DEPS_fuzz_line    = line xmalloc
FUZZ_DEPS_fuzz_framing = framing line tpkt buf xmalloc
FUZZ_DEPS_fuzz_cmd     = cmd args escape
FUZZ_DEPS_fuzz_names   = nick wire sha256 args xmalloc
FUZZ_LIBS_fuzz_names   = -lcrypto
FUZZ_DEPS_fuzz_client  = client message args utf8 tpkt buf net escape xmalloc
FUZZ_DEPS_fuzz_server  = $(filter-out bottled,$(SERVER))
FUZZ_LIBS_fuzz_server  = -lssl -lcrypto -lhiredis
FUZZ_DEPS_fuzz_cluster_event = cluster_event nick xmalloc
# Longest input libFuzzer makes: TPKT frames go up to 64 KiB; the server is
# slower per byte (an UPLOAD with its data is a few KiB).
FUZZ_MAXLEN  ?= 70000
FUZZ_MAXLEN_fuzz_server = 16384

fuzz_bin = $(FUZZ_DIR)/$(1)
fuzz_objs = $(patsubst %,$(FUZZ_DIR)/obj/%.o,$(1))

$(FUZZ_DIR)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(INC_tests) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# src/ found through the Makefile's vpath, with its side's include path.
$(FUZZ_DIR)/obj/%.o: %.c | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(INC_$(call side_of,$<)) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/obj:
	mkdir -p $@

.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz_%.o $$(call fuzz_objs,$$(FUZZ_DEPS_fuzz_$$*))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(FUZZ_LIBS_fuzz_$*) -o $@

.PRECIOUS: $(FUZZ_DIR)/obj/%.o

fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(call fuzz_bin,$(t)))

# Each committed file once. libFuzzer stops at the first input that fails, so
# after a failure every file is run alone to name all that fail.
fuzz-regress: fuzz-build
	@mkdir -p $(FUZZ_DIR)/log $(FUZZ_DIR)/artifacts; status=0; \
	for t in $(FUZZ_TARGETS); do \
	  files=$$(find tests/fuzz/corpus/$$t -type f 2>/dev/null | sort); \
	  [ -n "$$files" ] || continue; \
	  log=$(FUZZ_DIR)/log/$$t-regress.log; \
	  if $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) \
	       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t-regress- $$files > $$log 2>&1; then \
	    echo "fuzz-regress $$t: $$(echo "$$files" | wc -l) inputs ok"; \
	    continue; \
	  fi; \
	  status=1; \
	  for f in $$files; do \
	    $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t-regress- \
	      $$f > $$log.one 2>&1 && continue; \
	    echo "fuzz-regress $$t: FAILED on $$f"; \
	    grep -E 'SUMMARY|invariant violated|ghost connection' $$log.one | head -n 2 | sed 's/^/    /'; \
	    cat $$log.one >> $$log; \
	  done; \
	  rm -f $$log.one; \
	  echo "fuzz-regress $$t: logs in $$log"; \
	done; exit $$status

# Fuzzes target $1 for FUZZ_SECONDS with inputs up to $2 bytes: new inputs go
# to the scratch corpus, the committed one is only read.
FUZZ_RUN_SH = t=$$1; log=$(FUZZ_DIR)/log/$$t.log; \
  mkdir -p $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t; \
  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
  if $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) -max_len=$$2 -max_total_time=$(FUZZ_SECONDS) \
       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
       $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t > $$log 2>&1; then \
    echo "fuzz $$t: ok, $$(grep -o "^Done [0-9]* runs" $$log | cut -d" " -f2) runs, \
$$(ls $(FUZZ_DIR)/corpus/$$t | wc -l) inputs in $(FUZZ_DIR)/corpus/$$t"; \
  else \
    echo "fuzz $$t: FAILED (log: $$log)"; \
    grep -E "SUMMARY|invariant violated|ghost connection|Test unit written to" $$log | head -n 4; \
    exit 1; \
  fi

fuzz_pairs = $(foreach t,$(FUZZ_TARGETS),$(t) $(or $(FUZZ_MAXLEN_$(t)),$(FUZZ_MAXLEN)))

# Without a -j from above, the build itself runs FUZZ_JOBS compilers at once.
fuzz_j = $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(FUZZ_JOBS))

# FUZZ_JOBS targets at a time, every target run even when one fails.
fuzz:
	@$(MAKE) --no-print-directory $(fuzz_j) fuzz-build
	@mkdir -p $(FUZZ_DIR)/log $(FUZZ_DIR)/artifacts; status=0; \
	$(MAKE) --no-print-directory fuzz-regress || status=1; \
	echo $(fuzz_pairs) | xargs -n 2 -P $(FUZZ_JOBS) sh -c '$(FUZZ_RUN_SH)' fuzz-run || status=1; \
	[ $$status -eq 0 ] || echo "make fuzz: FAILED; crash inputs are in $(FUZZ_DIR)/artifacts/"; \
	exit $$status

# One target alone: make fuzz-run-fuzz_tpkt
fuzz-run-%: $(FUZZ_DIR)/%
	@mkdir -p $(FUZZ_DIR)/log $(FUZZ_DIR)/artifacts
	@sh -c '$(FUZZ_RUN_SH)' fuzz-run $* $(or $(FUZZ_MAXLEN_$*),$(FUZZ_MAXLEN))

fuzz-clean:
	rm -rf $(FUZZ_DIR)

.PHONY: fuzz fuzz-build fuzz-regress fuzz-clean

-include $(wildcard $(FUZZ_DIR)/obj/*.d)
