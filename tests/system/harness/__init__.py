"""The system-test harness for bottled (standard library and pytest only).

    env       binaries, timeouts (BOTTLE_TIMEOUT_SCALE), limits, wait_until
    protocol  greeting, line words, TPKT frames, take_lines / take_frames
    server    Server (a bottled process and its log), run_bottled, reports
    clients   Client, LineChatClient, TpktClient, run_nc, open_room,
              check_bystander
    xfer      line-mode UPLOAD / DOWNLOAD, TPKT upload, partials, rate lines
    files     random files, SHA-256
    proc      /proc: descriptors, RSS, CPU time
    tmux      bottle on a real terminal
    lineproc  a program on pipes, read line by line (script-mode bottle)
    latency   the ECHO pinger and its percentiles

conftest.py holds the fixtures; tests import what they use from these
modules (tests/system is on sys.path: pytest puts the rootdir conftest's
folder there).
"""
