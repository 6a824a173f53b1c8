# mk/lint.mk - static checks and formatting (Debian bookworm: clang-tidy and
# clang-format 14, cppcheck 2.10; `make deps` installs them).
#
#   make lint           all three below, even when one fails; fails if any did
#   make lint-format    clang-format --dry-run: every file already formatted?
#   make lint-cppcheck  cppcheck over src/ and bench/
#   make lint-tidy      clang-tidy over src/*.c, LINT_JOBS files at a time
#   make format         reformat those files in place
#
# The rules live in .clang-format and .clang-tidy (why a check is off is noted
# there). A false positive gets `NOLINT(check): why` (clang-tidy) or
# `cppcheck-suppress id` (cppcheck) on its line; a region that reads better
# hand-aligned gets `// clang-format off` / `// clang-format on` and a reason.

CLANG_TIDY   ?= clang-tidy
CLANG_FORMAT ?= clang-format
CPPCHECK     ?= cppcheck
LINT_JOBS    ?= 2

# Biggest first (ls -S), so the slowest file does not start last.
LINT_TIDY_SRCS   = $(shell ls -S $(wildcard src/*/*.c))
LINT_FORMAT_SRCS = $(wildcard src/*/*.[ch] tests/unit/*/*.c tests/fuzz/*.[ch] bench/*.c bench/lib/*.[ch])
# The build's language, defines, include paths and warnings; not -MMD/-MP (they
# would write .d files) nor CFLAGS (optimisation, sanitizers: nothing to check).
LINT_CFLAGS  = -std=c17 $(WARN) $(filter-out -MMD -MP,$(ALL_CPPFLAGS))
# readdirCalled (--library=posix): readdir_r is deprecated, and both programs
# are single-threaded.
LINT_CPPCHECK_FLAGS = --quiet --std=c11 --library=posix \
                      --enable=warning,performance,portability \
                      --error-exitcode=1 --inline-suppr \
                      --suppress=missingIncludeSystem --suppress=readdirCalled \
                      $(filter -D% -U% -I%,$(ALL_CPPFLAGS)) $(INC_tests)

lint_need = command -v $(1) >/dev/null || { echo "$(1) not found: make deps" >&2; exit 1; }

lint:
	@st=0; \
	 $(MAKE) --no-print-directory lint-format || st=1; \
	 $(MAKE) --no-print-directory lint-cppcheck || st=1; \
	 $(MAKE) --no-print-directory lint-tidy || st=1; \
	 if [ $$st -eq 0 ]; then echo "lint: clean"; else echo "lint: FAILED" >&2; fi; \
	 exit $$st

lint-format:
	@$(call lint_need,$(CLANG_FORMAT))
	@echo "clang-format: $(words $(LINT_FORMAT_SRCS)) files"
	@$(CLANG_FORMAT) --dry-run --Werror $(LINT_FORMAT_SRCS)

lint-cppcheck:
	@$(call lint_need,$(CPPCHECK))
	@echo "cppcheck: src/ bench/"
	@$(CPPCHECK) $(LINT_CPPCHECK_FLAGS) src/
	@$(CPPCHECK) $(LINT_CPPCHECK_FLAGS) -Ibench bench/

# One clang-tidy per file; each file's findings are printed together, without
# clang's "N warnings generated." (those are the suppressed system-header ones).
lint-tidy:
	@$(call lint_need,$(CLANG_TIDY))
	@echo "clang-tidy: $(words $(LINT_TIDY_SRCS)) files, $(LINT_JOBS) at a time"
	@printf '%s\n' $(LINT_TIDY_SRCS) | xargs -P$(LINT_JOBS) -n1 sh -c '\
	  side=$${1#src/}; side=$${side%%/*}; inc="-Isrc/common"; \
	  [ "$$side" = common ] || inc="$$inc -Isrc/$$side"; \
	  out=$$($(CLANG_TIDY) --quiet "$$1" -- $(LINT_CFLAGS) $$inc 2>&1); rc=$$?; \
	  printf "%s\n" "$$out" | grep -Ev "^([0-9]+ (warning|error)s? (and )?)+generated\.$$|^$$"; \
	  exit $$rc' sh

format:
	@$(call lint_need,$(CLANG_FORMAT))
	$(CLANG_FORMAT) -i $(LINT_FORMAT_SRCS)

.PHONY: lint lint-format lint-cppcheck lint-tidy format
