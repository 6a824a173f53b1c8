# make valgrind: a representative part of the system suite with the server --
# and the client, where a test runs it -- under valgrind's memcheck, against the
# normal build. Any memory error, any definite leak, or a descriptor bottled
# opened and left open at exit fails it.
#
#   bottled  BOTTLED_WRAP (tests/system/harness/server.py) runs every test server
#            under valgrind, one report per server ($(VG_DIR)/bottled.PID.log);
#            the harness checks each at teardown, so a failure names its test
#            and shows the report.
#   bottle   BOTTLE points at scripts/valgrind-bottle, which runs the real
#            client under valgrind ($(VG_DIR)/bottle.TEST.PID.log); those are
#            checked here after the run (the test is in the file name), and
#            --error-exitcode makes the test itself fail on the exit status.
#
# Leaks: only "definitely lost" counts ("still reachable" at exit is fine).
# Tests that kill the server or client with SIGKILL leave no report to check.
#
# The two halves of the list run side by side, one pytest each (pytest-xdist is
# not needed), each with its own --basetemp: about a minute on two idle cores,
# two on a busy machine. BOTTLE_TIMEOUT_SCALE stretches the harness's default
# bounds (waits for the log, start, exit) for the slower server.
#
# One test, or a few:  make valgrind VG_TESTS_1='test_chat.py::test_who_count_is_exact' VG_TESTS_2=
#
# Tests are picked by node id here rather than by a marker in the test files:
# a parametrized test can be taken in one variant only (the 1-byte round trip,
# not the 100 MiB one), the list and the reason for each entry stay in one
# place, and the test files others edit are left alone. A renamed test makes
# pytest fail loudly ("not found"), so the list can't rot silently.
#
# Left out on purpose: latency and timing assertions (test_idle_timeout's
# "closed no sooner than 1 s after the reply" is off by valgrind's reply
# latency; test_1gib_*, *_does_not_block_others), 100 MiB and 1 GiB transfers
# (hashing runs at ~10 MB/s under valgrind), tshark, network namespaces, and
# the interactive (tty) client: it sends its first frame only after setting up
# readline, which under valgrind takes longer than the server's 200 ms
# greeting delay, so the server greets it in line mode.

VALGRIND   ?= valgrind
VG_DIR      = $(BUILD)/valgrind
VG_EXIT     = 99
VG_OPTS     = --leak-check=full --show-leak-kinds=definite \
              --errors-for-leak-kinds=definite --error-exitcode=$(VG_EXIT) \
              --track-fds=yes --num-callers=40
VG_SCALE    = 4

# ---- half 1: commands, framing, chat, TPKT, the disconnect phases, script client
VG_TESTS_1 :=
# line framer: one send vs one byte per send, CRLF, HELP, unknown verbs
VG_TESTS_1 += test_basic.py::test_pipelined_and_byte_by_byte_give_same_replies
# QUIT with commands pipelined behind it: drain, then close
VG_TESTS_1 += test_basic.py::test_quit_stops_processing_pipelined_commands
# telnet IAC sequences split across reads
VG_TESTS_1 += test_basic.py::test_telnet_iac_split_across_sends
# NUL and invalid UTF-8 in commands
VG_TESTS_1 += test_basic.py::test_nul_and_invalid_utf8
# a 70 KB line: discarded, the next one served
VG_TESTS_1 += test_basic.py::test_overlong_line_default_limit
# disconnect by FIN and by RST, logged
VG_TESTS_1 += test_basic.py::test_log_connect_and_disconnect_reasons
# a line client that never reads: output overflow, cut off
VG_TESTS_1 += test_basic.py::test_never_reading_client_is_cut_off[64k-cap]
# --max-clients: "server full" then close after flush
VG_TESTS_1 += test_basic.py::test_max_clients
# SIGTERM with clients connected: shutdown notice, flush, exit 0 (leak check
# of a server that still had connections)
VG_TESTS_1 += test_basic.py::test_sigterm_notifies_clients_and_exits_zero
# real netcat, line mode
VG_TESTS_1 += test_basic.py::test_netcat_session[N]
# 1000 connections: the connection table and flush list grow
VG_TESTS_1 += test_basic.py::test_thousand_concurrent_clients_single_thread
# chat: SAY, multi-line SAY, TPKT one frame vs line clients line by line
VG_TESTS_1 += test_chat.py::test_multiline_say_tpkt_one_frame_line_clients_line_by_line
# pipelined SAY bursts from three senders to six members: shared encodings
VG_TESTS_1 += test_chat.py::test_order_of_one_senders_messages_at_every_receiver
# the largest MSG from a 128-byte nick: frame size limits exactly
VG_TESTS_1 += test_chat.py::test_longest_message_from_longest_nick_fits_one_frame
# SAY one byte too long, both framings
VG_TESTS_1 += test_chat.py::test_say_too_long_is_refused
# NICK: renames seen by all, WHO, log
VG_TESTS_1 += test_chat.py::test_nick_change_seen_by_everyone
# NICK: UTF-8 case folding and collisions
VG_TESTS_1 += test_chat.py::test_cyrillic_nick
# NICK: too long in UTF-8 (33 Cyrillic letters)
VG_TESTS_1 += test_chat.py::test_nick_invalid[33-cyrillic]
# WHO counts while members join and quit
VG_TESTS_1 += test_chat.py::test_who_count_is_exact
# JOIN events, both framings
VG_TESTS_1 += test_chat.py::test_join_events_in_order
# LEAVE by QUIT, both framings
VG_TESTS_1 += test_chat.py::test_leave_quit[tpkt]
VG_TESTS_1 += test_chat.py::test_leave_quit[line]
# LEAVE by disconnect: RST of a TPKT member, FIN of a line member
VG_TESTS_1 += test_chat.py::test_leave_closed[reset-tpkt]
VG_TESTS_1 += test_chat.py::test_leave_closed[close-line]
# the console log of chat, escaped
VG_TESTS_1 += test_chat.py::test_console_logs_chat_and_membership
# disconnect during a broadcast: a member cut off (too slow) while messages go out
VG_TESTS_1 += test_chat.py::test_slow_receiver_is_cut_off_others_get_everything
# TPKT: any bytes, the largest frame
VG_TESTS_1 += test_tpkt.py::test_echo_returns_any_bytes
# TPKT: empty payloads
VG_TESTS_1 += test_tpkt.py::test_empty_payload_is_an_error_and_connection_stays
# TPKT: frames split at every byte vs one send, greeting first
VG_TESTS_1 += test_tpkt.py::test_frames_split_at_every_byte_equal_one_send
# TPKT: a frame pair split at every position
VG_TESTS_1 += test_tpkt.py::test_frame_pair_split_at_every_position
# TPKT: 600 frames in one send, straddling reads
VG_TESTS_1 += test_tpkt.py::test_many_frames_in_one_send
# TPKT: bad header closes a room member; after good frames in the same read
VG_TESTS_1 += test_tpkt.py::test_bad_header_closes_only_that_client[length-3]
VG_TESTS_1 += test_tpkt.py::test_bad_header_after_good_frames_in_same_send[version-4]
# TPKT: --max-frame exceeded: fatal
VG_TESTS_1 += test_tpkt.py::test_max_frame_option
# disconnect mid-line, mid-frame, mid-upload (line), mid-hash (download and
# upload), mid-download (both framings), with a broadcast queued, and by the
# idle timer with input half received: phases no other test ends in
VG_TESTS_1 += test_valgrind_extra.py
# client -c: an ERR reply, exit 1
VG_TESTS_1 += test_client.py::test_command_error_exits_1
# client script mode: two clients and a raw one chatting, JOIN/LEAVE, quit
VG_TESTS_1 += test_client.py::test_script_clients_and_raw_client_chat
# client script mode: EOF after 50 pipelined lines
VG_TESTS_1 += test_client.py::test_script_eof_waits_for_replies_then_quits
# client: the server stops under it (exit 3); the server shuts down with members
VG_TESTS_1 += test_client.py::test_script_lost_connection_exits_3
# client: reconnect and resume after the server is killed mid-upload
VG_TESTS_1 += test_xfer_client.py::test_server_killed_mid_upload_client_recovers

# presence, ROLE, history and its catch-up, private messages, file news
VG_TESTS_1 += test_presence.py test_history.py
VG_TESTS_1 += test_files.py::test_delete_and_rename_are_news test_files.py::test_max_storage
# telnet options, line-mode escaping, the seed dialect (raw-socket tests)
VG_TESTS_1 += test_telnet.py::test_interrupts_drop_the_partial_line
VG_TESTS_1 += test_telnet.py::test_timing_mark_answered_in_order
VG_TESTS_1 += test_text_safety.py::test_issue_attack_is_escaped_for_nc_and_exact_for_tpkt
VG_TESTS_1 += test_seed.py::test_no_history_replay_and_exit_frame
VG_TESTS_1 += test_seed.py::test_bad_tpkt_header_closes_like_tpkt

# ---- half 2: file transfer, server side and client side
VG_TESTS_2 :=
# line UPLOAD and DOWNLOAD with real nc
VG_TESTS_2 += test_xfer_nc.py::test_nc_upload_and_download_text_file
# 1 MiB binary line round trip: many reads, sendfile
VG_TESTS_2 += test_xfer_nc.py::test_nc_binary_1mib_round_trip
# line LIST, quoted names with escapes
VG_TESTS_2 += test_xfer_nc.py::test_nc_list_and_quoted_names
# TPKT LIST
VG_TESTS_2 += test_xfer_tpkt.py::test_list_over_tpkt_is_one_frame
# TPKT LIST paging over 600 long names
VG_TESTS_2 += test_xfer_tpkt.py::test_list_pages_a_folder_too_big_for_one_frame
# half-close while a download hashes (line); after an upload's last frame (TPKT)
VG_TESTS_2 += test_xfer_nc.py::test_nc_half_close_download_of_unhashed_file
VG_TESTS_2 += test_xfer_tpkt.py::test_tpkt_half_close_after_last_frame_still_gets_reply
# sizes 1 (TPKT: commands again right after the last frame) and 0 (line)
VG_TESTS_2 += test_xfer_sizes.py::test_round_trip[one-tpkt]
VG_TESTS_2 += test_xfer_sizes.py::test_round_trip[empty-line]
# UPLOAD, its data and the next command in one read: held input, resume timer
VG_TESTS_2 += test_xfer_tpkt.py::test_tpkt_pipelined_upload_command_data_and_next_command
# data beyond the size: a failed transfer
VG_TESTS_2 += test_xfer_tpkt.py::test_tpkt_upload_data_beyond_size_fails
# refusals: missing file, invalid names (TPKT), invalid size (line closes)
VG_TESTS_2 += test_xfer_names.py::test_download_missing_file
VG_TESTS_2 += test_xfer_names.py::test_invalid_names_tpkt
VG_TESTS_2 += test_xfer_sizes.py::test_invalid_size_line_closes
# symlinks: the store's no-follow opens (valgrind 3.19 lacks openat2: the
# fallback path is the one checked)
VG_TESTS_2 += test_xfer_names.py::test_symlink_is_not_followed
# --max-file-size refusals, both framings
VG_TESTS_2 += test_xfer_sizes.py::test_max_file_size
# disconnect mid-upload of an anonymous upload: its partial dropped
VG_TESTS_2 += test_xfer_sizes.py::test_largest_size_is_accepted
# resume: interrupted by half-close, resumed, superseded by a new connection
VG_TESTS_2 += test_xfer_resume.py::test_resume_with_token
# resume of an upload already stored: no data
VG_TESTS_2 += test_xfer_resume.py::test_upload_of_a_file_already_stored_needs_no_data
# disconnect mid-upload by RST, then resume
VG_TESTS_2 += test_xfer_resume.py::test_resume_after_abrupt_reset
# checksum mismatch after verifying, both framings
VG_TESTS_2 += test_xfer_resume.py::test_checksum_mismatch_publishes_nothing
VG_TESTS_2 += test_xfer_resume.py::test_line_mode_checksum_mismatch
# DOWNLOAD with offsets (resume of a download), both framings
VG_TESTS_2 += test_xfer_resume.py::test_download_offset_tpkt
VG_TESTS_2 += test_xfer_resume.py::test_download_offset_line
# a stale cached digest: hash again
VG_TESTS_2 += test_xfer_resume.py::test_download_sees_replaced_file
# two TPKT uploads of one name at once
VG_TESTS_2 += test_xfer_tpkt.py::test_concurrent_uploads_last_wins_never_mix[a]
# --partial-ttl sweep at startup
VG_TESTS_2 += test_xfer_resume.py::test_abandoned_partials_expire_after_the_ttl
# client put and get, BOTTLE_SERVER
VG_TESTS_2 += test_xfer_client.py::test_put_as_name_with_spaces_and_env_address
# client get of a missing file: exit 1
VG_TESTS_2 += test_xfer_client.py::test_get_missing_file_exits_1
# client killed mid-upload (server: disconnect mid-upload), then resumes
VG_TESTS_2 += test_xfer_client.py::test_client_killed_mid_upload_resumes
# client interrupted by SIGINT mid-upload: its exit path
VG_TESTS_2 += test_xfer_client.py::test_client_interrupted_says_how_to_resume
# client killed mid-download (server: disconnect mid-download), then resumes
VG_TESTS_2 += test_xfer_client.py::test_client_killed_mid_download_resumes
# client ls over many LIST pages
VG_TESTS_2 += test_xfer_client.py::test_ls_reads_every_page

VG_ENV = BOTTLED=$(abspath $(BUILD)/bottled) \
         BOTTLED_WRAP="$(VALGRIND) $(VG_OPTS) --log-file=$(abspath $(VG_DIR))/bottled.%p.log" \
         BOTTLE=$(abspath scripts/valgrind-bottle) \
         VALGRIND_BOTTLE=$(abspath $(BUILD)/bottle) VALGRIND_OPTS="$(VG_OPTS)" \
         VALGRIND_LOG_DIR=$(abspath $(VG_DIR)) BOTTLE_TIMEOUT_SCALE=$(VG_SCALE)
# Quoted: parametrized ids hold [ ] for the shell.
vg_ids = $(foreach t,$(1),'tests/system/$(t)')

valgrind: all
	@command -v $(VALGRIND) >/dev/null || { echo "valgrind is not installed: make deps" >&2; exit 1; }
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)
	@echo "valgrind: $(words $(VG_TESTS_1) $(VG_TESTS_2)) test entries in two halves;" \
	  "reports in $(VG_DIR)/"
	@$(MAKE) --no-print-directory -k -j2 -O vg-half-1 vg-half-2 || touch $(VG_DIR)/failed
	@bad=$$(grep -l 'ERROR SUMMARY: [1-9]' $(VG_DIR)/bottle.*.log 2>/dev/null); \
	  for f in $$bad; do echo "== valgrind errors in the client: $$f"; cat "$$f"; done; \
	  if [ -e $(VG_DIR)/failed ] || [ -n "$$bad" ]; then echo "valgrind: FAILED" >&2; exit 1; fi; \
	  echo "valgrind: no errors, no definite leaks"

# One half in one pytest. As make's own jobs (not shell background jobs) the
# halves get Ctrl-C, so pytest stops its servers; -O keeps their output apart.
# An empty half (a VG_TESTS_n= override) has nothing to run.
vg-half-1 vg-half-2: vg-half-%:
	@echo "== valgrind, half $*"
	@$(if $(strip $(VG_TESTS_$*)),$(VG_ENV) $(PYTEST) -q $(VG_PYTEST_ARGS) \
	  --basetemp=$(abspath $(VG_DIR))/tmp$* $(call vg_ids,$(VG_TESTS_$*)),true)

.PHONY: valgrind vg-half-1 vg-half-2
