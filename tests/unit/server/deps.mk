# Unit tests of src/server: what each links (see the Makefile).
UNIT_DEPS_line    = line xmalloc
UNIT_DEPS_framing = framing line tpkt buf xmalloc
UNIT_DEPS_cmd     = cmd escape
UNIT_DEPS_loop    = loop loop_epoll xmalloc
UNIT_DEPS_room    = room history nick framing line tpkt buf escape log timefmt sha256 xmalloc
UNIT_LIBS_room    = -lcrypto
UNIT_DEPS_history = history framing line tpkt buf escape timefmt xmalloc
UNIT_DEPS_store   = store wire args sha256 xmalloc
UNIT_LIBS_store   = -lcrypto
UNIT_DEPS_seed    = seed conn conn_file room history nick framing line tpkt buf escape log timefmt sha256 args wire loop loop_epoll net xmalloc
UNIT_LIBS_seed    = -lcrypto
