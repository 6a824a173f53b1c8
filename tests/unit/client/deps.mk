# Unit tests of src/client: what each links (see the Makefile).
UNIT_DEPS_client  = client message args utf8 tpkt buf net escape xmalloc
UNIT_DEPS_message = message args utf8 escape xmalloc
UNIT_DEPS_transfer = transfer account link tls_client known_servers tlsio put get ls partfile reply resume ratelimit size progress userkey userfiles client message wire \
                     utf8 sha256 args nick tpkt buf net escape xmalloc
UNIT_LIBS_transfer = -lssl -lcrypto -lm
UNIT_DEPS_link = link tls_client known_servers userfiles tlsio client message args utf8 tpkt buf net escape xmalloc
UNIT_LIBS_link = -lssl -lcrypto
UNIT_DEPS_partfile = partfile sha256 xmalloc
UNIT_LIBS_partfile = -lcrypto
UNIT_DEPS_reply = reply wire sha256 args nick utf8
UNIT_LIBS_reply = -lcrypto
UNIT_DEPS_progress = progress utf8
UNIT_LIBS_progress = -lm
UNIT_DEPS_known_servers = known_servers userfiles
UNIT_DEPS_userfiles = userfiles
UNIT_DEPS_account = account userfiles client message args utf8 tpkt buf net escape nick xmalloc
