# Unit tests of src/common: what each links (see the Makefile).
UNIT_DEPS_tpkt    = tpkt
UNIT_DEPS_nick    = nick
UNIT_DEPS_buf     = buf xmalloc
UNIT_DEPS_timefmt = timefmt
UNIT_DEPS_escape  = escape
UNIT_DEPS_args    = args
UNIT_DEPS_wire    = wire sha256 args
UNIT_LIBS_wire    = -lcrypto
UNIT_DEPS_sha256  = sha256
UNIT_LIBS_sha256  = -lcrypto
UNIT_DEPS_utf8    = utf8
UNIT_DEPS_size    = size
UNIT_DEPS_tlsio   = tlsio buf xmalloc
UNIT_LIBS_tlsio   = -lssl -lcrypto
