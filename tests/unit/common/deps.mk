# Unit tests of src/common: what each links (see the Makefile).
UNIT_DEPS_tpkt    = tpkt
UNIT_DEPS_nick    = nick
UNIT_DEPS_buf     = buf xmalloc
UNIT_DEPS_timefmt = timefmt
UNIT_DEPS_escape  = escape
