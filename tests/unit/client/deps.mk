# Unit tests of src/client: what each links (see the Makefile).
UNIT_DEPS_client  = client tpkt buf net escape xmalloc
UNIT_DEPS_transfer = transfer ratelimit progress userkey client args tpkt buf net escape xmalloc
UNIT_LIBS_transfer = -lcrypto -lm
