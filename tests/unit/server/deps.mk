# Unit tests of src/server: what each links (see the Makefile).
UNIT_DEPS_line    = line xmalloc
UNIT_DEPS_framing = framing line tpkt buf xmalloc
UNIT_DEPS_cmd     = cmd escape
