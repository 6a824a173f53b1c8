# bottle: bottled (server) and bottle (client).
#   make            build both into build/
#   make run        install missing packages, build, run bottled on 127.0.0.1:4000
#   make test       install missing packages, build (gcc and clang), lint, unit +
#                   each fuzzer for 20 s, system tests, then the system tests
#                   again against an AddressSanitizer+UBSan build, and a
#                   subset with the server and client under valgrind
#   make lint       clang-tidy, cppcheck, clang-format check (mk/lint.mk)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS, default 60 (mk/fuzz.mk)
#   make valgrind   part of the system suite under valgrind memcheck (mk/valgrind.mk)
#   make demo       build, then show bottled with ss, netstat, nmap and tshark
#                   (scripts/demo-tools; docs/demo.md shows a run)
#   make install    PREFIX=/usr/local DESTDIR=: binaries, man pages, systemd unit
#   make uninstall  the same PREFIX and DESTDIR: remove what install put there

CC       ?= cc
CFLAGS   ?= -O2 -g
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
UNITDIR  ?= $(PREFIX)/lib/systemd/system
SCDOC    ?= scdoc
BUILD    ?= build
PYTEST   ?= pytest-3

WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wno-format-nonliteral
ALL_CPPFLAGS = -D_GNU_SOURCE -MMD -MP $(CPPFLAGS)
ALL_CFLAGS   = -std=c17 $(WARN) $(CFLAGS) $(CFLAGS_EXTRA)
ALL_LDFLAGS  = $(LDFLAGS)

SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined

# The folders show the architecture: src/common is what both programs share
# (the TPKT codec, protocol limits, argument words, net, log, ...),
# src/server is bottled, src/client is bottle. A file sees common and its own
# side only, so a server file that includes a client header fails to build.
# Module names are unique across the folders; objects go flat into $(BUILD).
modules = $(notdir $(basename $(wildcard src/$(1)/*.c)))
COMMON   = $(call modules,common)
SERVER   = $(COMMON) $(call modules,server)
CLIENT   = $(COMMON) $(call modules,client)
INC_common = -Isrc/common
INC_server = -Isrc/common -Isrc/server
INC_client = -Isrc/common -Isrc/client
# Tests and fuzzers may look at every side; tests/unit holds helpers the tests share.
INC_tests  = -Isrc/common -Isrc/server -Isrc/client -Itests/unit
side_of = $(word 2,$(subst /, ,$(1)))
vpath %.c src/common src/server src/client

obj = $(patsubst %,$(BUILD)/%.o,$(1))

all: $(BUILD)/bottled $(BUILD)/bottle man

$(BUILD)/%.o: %.c | $(BUILD)
	$(CC) $(ALL_CPPFLAGS) $(INC_$(call side_of,$<)) $(ALL_CFLAGS) -c $< -o $@

$(BUILD):
	mkdir -p $@

$(BUILD)/bottled: $(call obj,$(SERVER))
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ -lssl -lcrypto -lhiredis -o $@

# GNU readline, not libedit: see the comment at the top of src/client/chat_tty.c.
$(BUILD)/bottle: $(call obj,$(CLIENT))
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ -lreadline -lssl -lcrypto -lm -o $@

# ---- man pages: scdoc(5) sources in man/ ----
MANPAGES = $(BUILD)/bottled.8 $(BUILD)/bottle.1

man: $(MANPAGES)

$(BUILD)/%.8: man/%.8.scd | $(BUILD)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

$(BUILD)/%.1: man/%.1.scd | $(BUILD)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@

# ---- unit tests: one cmocka program per module, linked with what it tests;
#      tests/unit has the folders of src ----
UNIT_TESTS = $(patsubst test_%,%,$(notdir $(basename $(wildcard tests/unit/*/test_*.c))))
vpath test_%.c tests/unit/common tests/unit/server tests/unit/client
# What each test links: tests/unit/<side>/deps.mk, one UNIT_DEPS_<module> line
# (and UNIT_LIBS_<module> if it needs libraries) per test.
include $(wildcard tests/unit/*/deps.mk)

.SECONDEXPANSION:
$(BUILD)/test_%: test_%.c $$(call obj,$$(UNIT_DEPS_$$*)) | $(BUILD)
	$(CC) $(ALL_CPPFLAGS) $(INC_tests) $(ALL_CFLAGS) $(filter %.c %.o,$^) -lcmocka \
	  $(UNIT_LIBS_$*) -o $@

unit: $(patsubst %,$(BUILD)/test_%,$(UNIT_TESTS))
	@for t in $^; do echo "== $$t"; $$t || exit 1; done

# ---- system tests ----
system: all
	BOTTLED=$(abspath $(BUILD)/bottled) BOTTLE=$(abspath $(BUILD)/bottle) $(PYTEST) -q tests/system

deps:
	@scripts/deps

asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all unit

test: deps
	$(MAKE) all
	$(MAKE) CC=clang BUILD=build-clang all
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECONDS=20
	$(MAKE) system
	$(MAKE) asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) BUILD=build-asan system
	$(MAKE) valgrind

run: deps all
	./$(BUILD)/bottled -l 127.0.0.1:4000 -d ./bottle-data

demo: all
	BOTTLED=$(BUILD)/bottled BOTTLE=$(BUILD)/bottle scripts/demo-tools

install: all
	install -d $(DESTDIR)$(SBINDIR)
	install -m 755 $(BUILD)/bottled $(DESTDIR)$(SBINDIR)/bottled
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(BUILD)/bottle $(DESTDIR)$(BINDIR)/bottle
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(BUILD)/bottled.8 $(DESTDIR)$(MANDIR)/man8/bottled.8
	install -m 644 $(BUILD)/bottle.1 $(DESTDIR)$(MANDIR)/man1/bottle.1
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' contrib/bottled.service.in \
	  > $(DESTDIR)$(UNITDIR)/bottled.service
	chmod 644 $(DESTDIR)$(UNITDIR)/bottled.service

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/bottled
	rm -f $(DESTDIR)$(BINDIR)/bottle
	rm -f $(DESTDIR)$(MANDIR)/man8/bottled.8
	rm -f $(DESTDIR)$(MANDIR)/man1/bottle.1
	rm -f $(DESTDIR)$(UNITDIR)/bottled.service

clean:
	rm -rf build build-asan build-clang build-fuzz

.PHONY: all man unit system deps asan test run demo install uninstall clean

# Fragments with targets of their own: lint, fuzz, valgrind.
include $(wildcard mk/*.mk)

-include $(wildcard $(BUILD)/*.d)
