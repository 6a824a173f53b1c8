# Unit tests of src/client: what each links (see the Makefile).
UNIT_DEPS_client  = client utf8 tpkt buf net escape xmalloc
UNIT_DEPS_transfer = transfer link put get ls partfile reply resume ratelimit progress userkey client wire \
                     utf8 sha256 args nick tpkt buf net escape xmalloc
UNIT_LIBS_transfer = -lcrypto -lm
UNIT_DEPS_link = link client utf8 tpkt buf net escape xmalloc
UNIT_DEPS_partfile = partfile sha256 xmalloc
UNIT_LIBS_partfile = -lcrypto
UNIT_DEPS_reply = reply wire sha256 args nick utf8
UNIT_LIBS_reply = -lcrypto
